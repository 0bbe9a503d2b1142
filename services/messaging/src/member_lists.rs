//! The member lists of chats this replica sends to, kept between sends so a send needs no
//! query for them. A list is only a hint: the insert checks membership itself and returns
//! the chat's `members_version`, and a list older than that is read again.

use crate::model::Members;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many chats' lists are kept; past that the memory starts over.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct MemberLists {
    lists: Mutex<HashMap<String, Arc<Members>>>,
}

impl MemberLists {
    pub fn get(&self, chat_id: &str) -> Option<Arc<Members>> {
        self.lock().get(chat_id).cloned()
    }

    pub fn keep(&self, chat_id: &str, members: Arc<Members>) {
        let mut lists = self.lock();
        if lists.len() >= CAPACITY && !lists.contains_key(chat_id) {
            lists.clear();
        }
        lists.insert(chat_id.to_owned(), members);
    }

    pub fn forget(&self, chat_id: &str) {
        self.lock().remove(chat_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Members>>> {
        self.lists
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChatKind;

    fn members(version: i64) -> Arc<Members> {
        Arc::new(Members {
            kind: ChatKind::Group,
            version,
            users: Vec::new(),
        })
    }

    #[test]
    fn lists_are_kept_replaced_and_forgotten() {
        let lists = MemberLists::default();
        assert!(lists.get("1").is_none());
        lists.keep("1", members(1));
        lists.keep("1", members(2));
        assert_eq!(lists.get("1").unwrap().version, 2);
        lists.forget("1");
        assert!(lists.get("1").is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let lists = MemberLists::default();
        for n in 0..=CAPACITY {
            lists.keep(&n.to_string(), members(0));
        }
        assert!(lists.lock().len() <= CAPACITY);
        assert!(
            lists.get(&CAPACITY.to_string()).is_some(),
            "the newest is kept"
        );
    }
}
