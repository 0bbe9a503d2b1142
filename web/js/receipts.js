// receipts.js — who has seen the user's last message, from the members' read markers, in
// words: "Seen" in a direct chat, "Seen by ann, bob" in a group. Pure: no DOM, no network.

/** @typedef {import('./types.js').Chat} Chat */
/** @typedef {import('./types.js').Message} Message */

/** Names shown before the rest are counted ("… and 3 others"). */
const NAMED = 3;

/**
 * The user's newest message that a reader can have seen: their own, not deleted, not a group
 * change. @param {readonly Message[]} items @param {string} meId
 */
export function lastOwnMessage(items, meId) {
  return items.findLast((m) => m.author_id === meId && !m.deleted && !m.system) ?? null;
}

/**
 * "Seen by ann", "Seen by ann, bob, cy", "Seen by ann, bob and 3 others".
 * @param {readonly string[]} names
 */
export function seenByText(names) {
  if (names.length <= NAMED) return `Seen by ${names.join(', ')}`;
  const others = names.length - (NAMED - 1);
  return `Seen by ${names.slice(0, NAMED - 1).join(', ')} and ${others} others`;
}

/**
 * What to say under the user's last message of a chat, and under which: null when nobody else
 * has read that far, or when the user does not share read receipts (then nobody's show). The
 * user's own marker never counts; nor does anyone who is no longer a member.
 * @param {Chat} chat @param {readonly Message[]} items the chat's messages, by seq
 * @param {string} meId @param {boolean} sharing whether the user shares read receipts
 * @returns {{ message_id: string, text: string } | null}
 */
export function seenLine(chat, items, meId, sharing) {
  if (!sharing) return null;
  const mine = lastOwnMessage(items, meId);
  if (!mine) return null;
  const readers = new Set(chat.read_states.filter((r) => r.user_id !== meId && r.seq >= mine.seq).map((r) => r.user_id));
  // In the members' order, so the names hold still as more people read.
  const names = chat.members.filter((m) => readers.has(m.id)).map((m) => m.username);
  if (names.length === 0) return null;
  return { message_id: mine.id, text: chat.kind === 'direct' ? 'Seen' : seenByText(names) };
}
