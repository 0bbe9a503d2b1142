// attachments.js — the rules about files in messages, as the client needs them: which files
// may be sent (the server's limits, checked here before a byte is sent), sizes in words, how
// large a picture shows, and what a preview says of a message with files. Pure.

/** @typedef {import('./types.js').Attachment} Attachment */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').Preview} Preview */

/** One line saying what a message holds; `files`: the text names its files (no text of its own). @typedef {{ text: string, files: boolean }} PreviewLine */

/** The largest file the server takes: 25 MiB (413 beyond). */
export const MAX_FILE_BYTES = 25 * 1024 * 1024;
/** The most files one message carries (400 beyond). */
export const MAX_FILES = 10;
/** The server's thumbnails are at most this many pixels a side; a picture shows no larger. */
export const THUMB_MAX = 320;

const UNITS = ['KB', 'MB', 'GB'];

/**
 * A size for people, in units of 1,024 (as file managers count): "1 byte", "512 bytes",
 * "1.5 KB", "240 KB", "25 MB". One decimal below 10, whole numbers above.
 * @param {number} bytes
 */
export function formatSize(bytes) {
  if (!(bytes >= 1024)) return bytes === 1 ? '1 byte' : `${Math.max(0, Math.round(bytes || 0))} bytes`;
  let n = bytes;
  let unit = -1;
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit += 1;
  }
  const shown = n < 10 ? String(Math.round(n * 10) / 10) : String(Math.round(n));
  return `${shown} ${UNITS[unit]}`;
}

/**
 * Which of `files` may join the `already` chosen for one message: none over 25 MiB, at most 10
 * in all (the first ones chosen). `refusal` says, as sentences, why any was left out.
 * @template {{ name: string, size: number }} F
 * @param {readonly F[]} files @param {number} already
 * @returns {{ accepted: F[], refusal: string | null }}
 */
export function checkFiles(files, already) {
  const big = files.filter((f) => f.size > MAX_FILE_BYTES);
  const fit = files.filter((f) => f.size <= MAX_FILE_BYTES);
  const room = Math.max(0, MAX_FILES - already);
  const accepted = fit.slice(0, room);
  const limit = formatSize(MAX_FILE_BYTES);
  /** @type {string[]} */
  const why = [];
  if (big.length === 1) why.push(`“${big[0].name}” is too large (${formatSize(big[0].size)}): a file can be at most ${limit}.`);
  else if (big.length > 1) why.push(`${big.length} files are too large: a file can be at most ${limit}.`);
  const left = fit.length - accepted.length;
  if (left > 0) why.push(`A message holds at most ${MAX_FILES} files: ${left === 1 ? '1 was' : `${left} were`} left out.`);
  return { accepted, refusal: why.length > 0 ? why.join(' ') : null };
}

/** Whether a file is a picture the server measured (and can make a thumbnail of). @param {Attachment} a */
export function isPicture(a) {
  return a.width !== null && a.height !== null && a.content_type.startsWith('image/');
}

/**
 * The box a picture shows in: its own proportions, no larger than `max` a side and never
 * enlarged. Known before it loads, so the timeline does not jump when it does.
 * @param {number} width @param {number} height @param {number} [max]
 * @returns {{ width: number, height: number }}
 */
export function fitWithin(width, height, max = THUMB_MAX) {
  const scale = Math.min(1, max / Math.max(width, height, 1));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * What a one-line preview says of a message: its text; or, for files alone, what they are
 * ("photo.png" when there is one whose name is known, "2 files") with `files` set, for the
 * view to mark with a paperclip.
 * @param {string} content @param {number} files how many it carries @param {string | null} [name] the first file's name, when known
 * @returns {PreviewLine}
 */
export function previewParts(content, files, name = null) {
  const text = content.replace(/\s+/g, ' ').trim();
  if (text || files <= 0) return { text, files: false };
  return { text: files === 1 ? name ?? '1 file' : `${files} files`, files: true };
}

/** The same as plain text, the paperclip an emoji ("📎 photo.png"): for notifications. @param {string} content @param {number} files @param {string | null} [name] */
export function previewLabel(content, files, name = null) {
  const p = previewParts(content, files, name);
  return p.files ? `📎 ${p.text}` : p.text;
}

/**
 * What a preview (a reply's quote, a chat's last message) says in one line. A preview only
 * counts files: the name comes from the whole message, when the client has it.
 * @param {Preview} p @param {Message | null | undefined} [full] @returns {PreviewLine}
 */
export function describePreview(p, full) {
  const name = full && full.id === p.id && full.attachments.length === 1 ? full.attachments[0].filename : null;
  return previewParts(p.content, p.attachment_count, name);
}

/** A file's extension for its card: "PDF", "TXT"; empty when it has none (or a long one). @param {string} filename */
export function fileExtension(filename) {
  const m = /\.([A-Za-z0-9]{1,5})$/.exec(filename);
  return m ? m[1].toUpperCase() : '';
}
