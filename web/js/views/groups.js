// views/groups.js — the group dialogs: create a group (a name and some friends), and a group's
// settings (rename, add and remove members as the owner; leave).

import { h, reconcile, setText, avatar, updateAvatar } from '../dom.js';
import { chatName, isOwner } from '../model.js';
import { openModal } from './dialog.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('../types.js').User} User */

/**
 * @typedef {{
 *   createGroup: (name: string, memberIds: string[]) => Promise<void>,
 *   renameChat: (chatId: string, name: string) => Promise<void>,
 *   addMember: (chatId: string, u: User) => Promise<void>,
 *   removeMember: (chatId: string, u: User) => Promise<void>,
 *   leaveChat: (chatId: string) => Promise<void>,
 *   confirm: (o: { title: string, text: string, confirm: string }) => Promise<boolean>,
 * }} GroupActions
 */

/** @typedef {{ render: (s: State) => void, close: () => void }} OpenDialog */

const NAME_MAX = 100;

/** @param {unknown} e */
function words(e) {
  return e instanceof Error ? e.message : 'That did not work.';
}

/** A person in a dialog's list, with room for buttons or a checkbox. @param {User} u @param {...Node} extra */
function personRow(u, ...extra) {
  return h('li', { class: 'person compact' }, avatar(u.username, u.id), h('span', { class: 'person-text' }, h('span', { class: 'person-name' }, u.username)), ...extra);
}

/**
 * The "Create group" dialog.
 * @param {GroupActions} actions @param {() => void} onClose @returns {OpenDialog}
 */
export function createGroupDialog(actions, onClose) {
  const name = h('input', { id: 'new-group-name', type: 'text', maxlength: String(NAME_MAX), autocomplete: 'off', placeholder: 'Weekend plans' });
  const filter = h('input', { id: 'new-group-filter', type: 'text', autocomplete: 'off', placeholder: 'Search friends' });
  const people = h('ul', { class: 'people pick-list', 'aria-label': 'Friends to add' });
  const none = h('p', { class: 'empty small' }, 'Add friends first: groups are made of your friends.');
  const count = h('span', { class: 'hint' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Create group');
  /** @type {Set<string>} */
  const picked = new Set();

  const form = h(
    'form',
    { class: 'dialog-form', onsubmit: (e) => void create(e) },
    h('div', { class: 'field' }, h('label', { for: 'new-group-name' }, 'Group name'), name),
    h(
      'fieldset',
      { class: 'field' },
      h('legend', {}, 'Members ', count),
      h('label', { for: 'new-group-filter', class: 'sr-only' }, 'Search friends'),
      filter,
      people,
      none,
    ),
    error,
    h('div', { class: 'dialog-buttons' }, h('button', { type: 'button', class: 'btn secondary', onclick: () => modal.close() }, 'Cancel'), submit),
  );
  const modal = openModal({ title: 'Create a group', content: [form], className: 'group-dialog', onClose });
  name.focus();
  /** @type {State | null} */
  let last = null;
  filter.addEventListener('input', () => last && render(last));

  function showCount() {
    setText(count, picked.size ? `— ${picked.size} selected` : '');
  }

  /** @param {Event} e */
  async function create(e) {
    e.preventDefault();
    const n = name.value.trim();
    if (!n) {
      error.textContent = 'Give the group a name.';
      name.focus();
      return;
    }
    if (picked.size === 0) {
      error.textContent = 'Pick at least one friend.';
      return;
    }
    submit.disabled = true;
    error.textContent = '';
    try {
      await actions.createGroup(n, [...picked]);
      modal.close();
    } catch (err) {
      error.textContent = words(err);
      submit.disabled = false;
    }
  }

  /** @param {State} s */
  function render(s) {
    last = s;
    const f = filter.value.trim().toLowerCase();
    const friends = s.friends.friends.filter((u) => !f || u.username.includes(f) || picked.has(u.id));
    none.hidden = s.friends.friends.length > 0 || !s.friends_loaded;
    filter.hidden = s.friends.friends.length < 8;
    reconcile(
      people,
      friends,
      (u) => u.id,
      (u) => {
        const box = h('input', { type: 'checkbox', id: `pick-${u.id}`, value: u.id });
        box.addEventListener('change', () => {
          if (box.checked) picked.add(u.id);
          else picked.delete(u.id);
          showCount();
        });
        const row = h('li', { class: 'person compact pick' }, h('label', { for: `pick-${u.id}`, class: 'pick-label' }, box, avatar(u.username, u.id), h('span', { class: 'person-name' }, u.username)));
        return row;
      },
      () => {},
    );
    showCount();
  }

  return { render, close: () => modal.close() };
}

/**
 * A group's settings: its name, its members, adding friends, leaving.
 * @param {string} chatId @param {GroupActions} actions @param {() => void} onClose @returns {OpenDialog}
 */
export function groupSettingsDialog(chatId, actions, onClose) {
  const name = h('input', { id: 'group-name', type: 'text', maxlength: String(NAME_MAX), autocomplete: 'off' });
  const saveName = h('button', { type: 'submit', class: 'btn primary small' }, 'Save name');
  const nameError = h('p', { class: 'form-error', role: 'alert' });
  const nameForm = h(
    'form',
    { class: 'dialog-section', onsubmit: (e) => void rename(e) },
    h('label', { for: 'group-name', class: 'section-title' }, 'Group name'),
    h('div', { class: 'inline-form' }, name, saveName),
    nameError,
  );
  const nameText = h('p', { class: 'group-name-text' });
  const nameView = h('div', { class: 'dialog-section' }, h('h3', { class: 'section-title' }, 'Group name'), nameText);

  const membersTitle = h('h3', { class: 'section-title', id: 'group-members-title' });
  const members = h('ul', { class: 'people', 'aria-labelledby': 'group-members-title' });
  const addTitle = h('h3', { class: 'section-title', id: 'group-add-title' }, 'Add friends');
  const addable = h('ul', { class: 'people', 'aria-labelledby': 'group-add-title' });
  const noneToAdd = h('p', { class: 'empty small' }, 'All your friends are in this group.');
  const addSection = h('div', { class: 'dialog-section' }, addTitle, addable, noneToAdd);
  const error = h('p', { class: 'form-error', role: 'alert' });
  const leave = h('button', { type: 'button', class: 'btn danger-ghost', onclick: () => void leaveGroup() }, 'Leave group');

  const modal = openModal({
    title: 'Group settings',
    content: [nameForm, nameView, h('div', { class: 'dialog-section' }, membersTitle, members), addSection, error, h('div', { class: 'dialog-buttons' }, leave)],
    className: 'group-dialog',
    onClose,
  });
  let nameShown = '';

  /**
   * A button that runs an action, disabled meanwhile; errors go to the dialog's error line.
   * @param {string} text @param {string} label @param {string} cls @param {() => Promise<void>} run
   */
  function button(text, label, cls, run) {
    const b = h('button', { type: 'button', class: `btn small ${cls}`, 'aria-label': label }, text);
    b.addEventListener('click', async () => {
      b.disabled = true;
      error.textContent = '';
      try {
        await run();
      } catch (err) {
        error.textContent = words(err);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }

  /** @param {Event} e */
  async function rename(e) {
    e.preventDefault();
    const n = name.value.trim();
    if (!n) {
      nameError.textContent = 'A group needs a name.';
      return;
    }
    saveName.disabled = true;
    nameError.textContent = '';
    try {
      await actions.renameChat(chatId, n);
      nameShown = n;
    } catch (err) {
      nameError.textContent = words(err);
    } finally {
      saveName.disabled = false;
    }
  }

  async function leaveGroup() {
    const ok = await actions.confirm({
      title: 'Leave group',
      text: 'Leave this group? You will stop receiving its messages; someone will have to add you again.',
      confirm: 'Leave group',
    });
    if (!ok) return;
    try {
      await actions.leaveChat(chatId);
      modal.close();
    } catch (err) {
      error.textContent = words(err);
    }
  }

  /** @param {State} s */
  function render(s) {
    const chat = s.chats.get(chatId);
    if (!chat || chat.kind !== 'group') {
      modal.close();
      return;
    }
    const me = s.me?.id;
    const owner = isOwner(chat, me);
    const title = chatName(chat, me);
    modal.setTitle(`${title} — settings`);
    nameForm.hidden = !owner;
    nameView.hidden = owner;
    setText(nameText, title);
    // Keep what the owner is typing; follow renames made elsewhere otherwise.
    if (document.activeElement !== name && nameShown !== chat.name) {
      name.value = chat.name;
      nameShown = chat.name;
    }

    setText(membersTitle, `Members — ${chat.members.length}`);
    reconcile(
      members,
      chat.members,
      (u) => u.id,
      (u) => personRow(u, h('span', { class: 'person-tags' }), h('span', { class: 'person-actions' })),
      (li, u) => {
        updateAvatar(/** @type {HTMLElement} */ (li.querySelector('.avatar')), u.username, u.id);
        setText(/** @type {HTMLElement} */ (li.querySelector('.person-name')), u.id === me ? `${u.username} (you)` : u.username);
        const tags = /** @type {HTMLElement} */ (li.querySelector('.person-tags'));
        const isOwnerRow = u.id === chat.owner_id;
        if ((tags.textContent === 'Owner') !== isOwnerRow) tags.replaceChildren(isOwnerRow ? h('span', { class: 'tag' }, 'Owner') : '');
        const acts = /** @type {HTMLElement} */ (li.querySelector('.person-actions'));
        const canRemove = owner && u.id !== me;
        if (canRemove && !acts.firstElementChild) {
          acts.append(
            button('Remove', `Remove ${u.username} from the group`, 'danger-ghost', async () => {
              const ok = await actions.confirm({ title: 'Remove member', text: `Remove ${u.username} from ${chatName(chat, me)}?`, confirm: 'Remove' });
              if (ok) await actions.removeMember(chatId, u);
            }),
          );
        } else if (!canRemove) acts.replaceChildren();
      },
    );

    addSection.hidden = !owner;
    const inGroup = new Set(chat.members.map((m) => m.id));
    const candidates = owner ? s.friends.friends.filter((u) => !inGroup.has(u.id)) : [];
    noneToAdd.hidden = candidates.length > 0;
    reconcile(
      addable,
      candidates,
      (u) => u.id,
      (u) => personRow(u, h('span', { class: 'person-actions' }, button('Add', `Add ${u.username} to the group`, 'primary', () => actions.addMember(chatId, u)))),
      () => {},
    );
  }

  return { render, close: () => modal.close() };
}
