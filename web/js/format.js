// format.js — turns data into words for people: times, day labels, initials, counts. Pure.

/** One or two letters for an avatar: "alice_smith" → "AS", "bob" and "bob_42" → "B". @param {string} name */
export function initials(name) {
  const parts = name.split(/[\s_.\-]+/).filter(Boolean);
  const first = [...(parts[0] ?? name.trim())][0] ?? '?';
  const second = parts.length >= 2 && /^\p{L}/u.test(parts[1]) ? [...parts[1]][0] : '';
  return (first + second).toUpperCase();
}

/** Twelve hues at least 25° apart: two avatars either share a colour or clearly differ. */
export const AVATAR_HUES = [12, 40, 75, 110, 145, 175, 205, 235, 265, 295, 325, 350];

/** A stable hue for someone's avatar, from their id (FNV-1a, one of `AVATAR_HUES`). @param {string} key */
export function hueOf(key) {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return AVATAR_HUES[h % AVATAR_HUES.length];
}

/** @param {Date} a @param {Date} b */
export function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const longDateFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

/** @param {string} iso */
function parse(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "14:05", "Yesterday at 14:05" or "Mar 3, 2026 14:05". @param {string} iso @param {Date} [now] */
export function messageTime(iso, now = new Date()) {
  const d = parse(iso);
  if (!d) return '';
  if (sameDay(d, now)) return timeFmt.format(d);
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(d, yesterday)) return `Yesterday at ${timeFmt.format(d)}`;
  return `${dateFmt.format(d)} ${timeFmt.format(d)}`;
}

/** Short time for the chat list: "14:05" today, else "Mar 3". @param {string} iso @param {Date} [now] */
export function listTime(iso, now = new Date()) {
  const d = parse(iso);
  if (!d) return '';
  if (sameDay(d, now)) return timeFmt.format(d);
  return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' }).format(d);
}

/** The full date and time, for a tooltip. @param {string} iso */
export function fullTime(iso) {
  const d = parse(iso);
  return d ? fullFmt.format(d) : '';
}

/** A day separator's label: "Today", "Yesterday" or the long date. @param {string} iso @param {Date} [now] */
export function dayLabel(iso, now = new Date()) {
  const d = parse(iso);
  if (!d) return '';
  if (sameDay(d, now)) return 'Today';
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(d, yesterday)) return 'Yesterday';
  return longDateFmt.format(d);
}

/** Whether two messages' times are on the same local day. @param {string} a @param {string} b */
export function sameDayIso(a, b) {
  const da = parse(a);
  const db = parse(b);
  return !!da && !!db && sameDay(da, db);
}

/** Milliseconds between two RFC 3339 times (NaN if either is unreadable). @param {string} a @param {string} b */
export function msBetween(a, b) {
  return new Date(b).getTime() - new Date(a).getTime();
}

/** A badge's text: "1" … "99", then "99+". @param {number} n */
export function badgeText(n) {
  return n > 99 ? '99+' : String(n);
}

/** One line of a message for the chat list. @param {string} content */
export function previewText(content) {
  return content.replace(/\s+/g, ' ').trim().slice(0, 120);
}

/**
 * "alice is typing…", "alice and bob are typing…", "Several people are typing…".
 * @param {readonly string[]} names
 */
export function typingText(names) {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  return 'Several people are typing…';
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "1 minute", "5 minutes". @param {number} n @param {string} unit */
function plural(n, unit) {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/**
 * How long ago someone was last seen: "last seen just now", "last seen 5 minutes ago", "… 3
 * hours ago", "… 2 days ago", then the date; "offline" when not known.
 * @param {string | null} iso @param {number} now ms since the epoch
 */
export function lastSeenText(iso, now) {
  const at = iso ? Date.parse(iso) : NaN;
  if (!Number.isFinite(at)) return 'offline';
  const ago = Math.max(0, now - at);
  if (ago < MINUTE) return 'last seen just now';
  if (ago < HOUR) return `last seen ${plural(Math.floor(ago / MINUTE), 'minute')} ago`;
  if (ago < DAY) return `last seen ${plural(Math.floor(ago / HOUR), 'hour')} ago`;
  if (ago < 7 * DAY) return `last seen ${plural(Math.floor(ago / DAY), 'day')} ago`;
  return `last seen on ${dateFmt.format(new Date(at))}`;
}

/**
 * A friend's presence in words ("online", "idle", "last seen 5 minutes ago"), or '' when it
 * is not known (not a friend).
 * @param {import('./types.js').Presence | null} p @param {number} now
 */
export function presenceText(p, now) {
  if (!p) return '';
  if (p.status === 'online') return 'online';
  if (p.status === 'idle') return 'idle';
  return lastSeenText(p.last_seen_at, now);
}

/** A phrase as a sentence's start: "last seen …" → "Last seen …". @param {string} text */
export function capitalized(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

/** A short name for a browser from its user agent: "Firefox on Linux". @param {string} ua */
export function deviceName(ua) {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : /curl\//.test(ua) ? 'curl' : null;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS X|Macintosh/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : null;
  if (browser && os) return `${browser} on ${os}`;
  return browser ?? os ?? ua.slice(0, 40);
}

/** Characters shown before a long message's first match, and in all. */
const BEFORE_MATCH = 60;
const SNIPPET = 240;

/**
 * A search result's content in parts, the matches marked: the whole content, or for a long
 * one a window starting a little before its first match, with "…" where it was cut.
 * Highlights are in characters (code points), as the server counts them.
 * @param {string} content @param {{ start: number, end: number }[]} highlights
 * @returns {{ text: string, mark: boolean }[]}
 */
export function snippetParts(content, highlights) {
  const chars = [...content];
  const from = chars.length > SNIPPET ? Math.max(0, (highlights[0]?.start ?? 0) - BEFORE_MATCH) : 0;
  const to = Math.min(chars.length, from + SNIPPET);
  /** @type {{ text: string, mark: boolean }[]} */
  const parts = from > 0 ? [{ text: '…', mark: false }] : [];
  let at = from;
  for (const { start, end } of highlights) {
    if (end <= at || start >= to) continue;
    const s = Math.max(start, at);
    if (s > at) parts.push({ text: chars.slice(at, s).join(''), mark: false });
    const e = Math.min(end, to);
    parts.push({ text: chars.slice(s, e).join(''), mark: true });
    at = e;
  }
  if (at < to) parts.push({ text: chars.slice(at, to).join(''), mark: false });
  if (to < chars.length) parts.push({ text: '…', mark: false });
  return parts;
}
