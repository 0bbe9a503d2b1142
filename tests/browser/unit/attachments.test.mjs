// Unit tests of files in messages: the client's rules (web/js/attachments.js), parsing them
// (model.js), and opening a device's copy saved before messages had files (store.js).
// Run with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatSize, checkFiles, isPicture, fitWithin, previewParts, previewLabel, describePreview, fileExtension, MAX_FILE_BYTES, MAX_FILES,
} from '../../../web/js/attachments.js';
import { parseMessage, parsePreview, parseAttachment, previewOf } from '../../../web/js/model.js';
import { initialState, restoreSnapshot } from '../../../web/js/store.js';

const file = (name, size) => ({ name, size });
const picture = { id: '1', filename: 'photo.png', content_type: 'image/png', size: 2048, width: 640, height: 400 };

test('sizes read as people count them: bytes, then KB, MB, GB in steps of 1,024', () => {
  assert.equal(formatSize(0), '0 bytes');
  assert.equal(formatSize(1), '1 byte');
  assert.equal(formatSize(1023), '1023 bytes');
  assert.equal(formatSize(1024), '1 KB');
  assert.equal(formatSize(1536), '1.5 KB');
  assert.equal(formatSize(245_760), '240 KB');
  assert.equal(formatSize(1_310_720), '1.3 MB');
  assert.equal(formatSize(MAX_FILE_BYTES), '25 MB');
  assert.equal(formatSize(3 * 1024 ** 3), '3 GB');
});

test('a file over 25 MiB is refused before uploading, saying which and why; 25 MiB exactly is taken', () => {
  const { accepted, refusal } = checkFiles([file('ok.png', MAX_FILE_BYTES), file('huge.iso', 30 * 1024 * 1024)], 0);
  assert.deepEqual(accepted.map((f) => f.name), ['ok.png']);
  assert.equal(refusal, '“huge.iso” is too large (30 MB): a file can be at most 25 MB.');
  assert.equal(checkFiles([file('a', MAX_FILE_BYTES + 1), file('b', MAX_FILE_BYTES + 1)], 0).refusal, '2 files are too large: a file can be at most 25 MB.');
  assert.deepEqual(checkFiles([file('a', 10)], 0), { accepted: [file('a', 10)], refusal: null });
});

test('a message holds at most 10 files: the first chosen are kept, the rest counted as left out', () => {
  const twelve = Array.from({ length: 12 }, (_, i) => file(`f${i}`, 1));
  const first = checkFiles(twelve, 0);
  assert.equal(first.accepted.length, MAX_FILES);
  assert.equal(first.accepted[0].name, 'f0');
  assert.equal(first.refusal, 'A message holds at most 10 files: 2 were left out.');
  const more = checkFiles([file('x', 1), file('y', 1)], 9);
  assert.deepEqual(more.accepted.map((f) => f.name), ['x']);
  assert.equal(more.refusal, 'A message holds at most 10 files: 1 was left out.');
  assert.equal(checkFiles([file('z', 1)], 10).accepted.length, 0);
});

test('a picture is a file the server measured; it shows in a box of its proportions, at most 320 px, never enlarged', () => {
  assert.equal(isPicture(picture), true);
  assert.equal(isPicture({ ...picture, width: null, height: null }), false, 'an image type the server could not read');
  assert.equal(isPicture({ ...picture, content_type: 'application/pdf' }), false);
  assert.deepEqual(fitWithin(640, 400), { width: 320, height: 200 });
  assert.deepEqual(fitWithin(300, 900), { width: 107, height: 320 });
  assert.deepEqual(fitWithin(100, 50), { width: 100, height: 50 });
  assert.deepEqual(fitWithin(10_000, 1), { width: 320, height: 1 });
});

test('a preview says the text, else what the files are: a name when one is known, else a count', () => {
  assert.deepEqual(previewParts('  hello\n there ', 2), { text: 'hello there', files: false });
  assert.deepEqual(previewParts('', 1, 'photo.png'), { text: 'photo.png', files: true });
  assert.deepEqual(previewParts('', 1), { text: '1 file', files: true });
  assert.deepEqual(previewParts('', 3, 'photo.png'), { text: '3 files', files: true });
  assert.deepEqual(previewParts('', 0), { text: '', files: false });
  assert.equal(previewLabel('', 1, 'photo.png'), '📎 photo.png');
  assert.equal(previewLabel('', 2), '📎 2 files');
  assert.equal(previewLabel('hi', 2), 'hi');
});

test('a preview names its file from the whole message when the client has that message', () => {
  const m = parseMessage({ id: '7', chat_id: 'c', content: '', attachments: [picture] });
  const p = previewOf(m);
  assert.equal(p.attachment_count, 1);
  assert.deepEqual(describePreview(p, m), { text: 'photo.png', files: true });
  assert.deepEqual(describePreview(p, undefined), { text: '1 file', files: true });
  assert.deepEqual(describePreview(p, { ...m, id: '8' }), { text: '1 file', files: true }, 'never another message\'s file');
});

test('a file card shows the extension, short ones only', () => {
  assert.equal(fileExtension('notes.txt'), 'TXT');
  assert.equal(fileExtension('archive.tar.gz'), 'GZ');
  assert.equal(fileExtension('README'), '');
  assert.equal(fileExtension('x.averylongext'), '');
});

test('attachments are parsed at the edge: sizes only in pairs, none once the message is deleted', () => {
  const a = parseAttachment({ id: 5, filename: 'a.bin', content_type: '', size: '12', width: 10, height: null });
  assert.deepEqual(a, { id: '5', filename: 'a.bin', content_type: 'application/octet-stream', size: 12, width: null, height: null });
  assert.equal(parseAttachment({ id: '6' }).filename, 'file');
  const m = parseMessage({ id: '1', attachments: [picture, { filename: 'no id' }] });
  assert.deepEqual(m.attachments, [picture]);
  assert.deepEqual(parseMessage({ id: '2', deleted: true, attachments: [picture] }).attachments, []);
  assert.deepEqual(parseMessage({ id: '3' }).attachments, []);
  assert.equal(parsePreview({ id: '1', attachment_count: 2 })?.attachment_count, 2);
  assert.equal(parsePreview({ id: '1' })?.attachment_count, 0);
  assert.equal(previewOf({ ...m, deleted: true }).attachment_count, 0);
});

test('a device copy saved before messages had files opens with none, its unsent messages too', () => {
  const s = initialState();
  restoreSnapshot(s, {
    v: 1,
    saved_at: '2026-01-01T00:00:00.000Z',
    chats: [{ id: 'c', kind: 'direct', members: [], last_message: { id: '1', author_id: 'a', content: 'hi', created_at: '', deleted: false } }],
    timelines: [{ chat_id: 'c', items: [{ id: '1', chat_id: 'c', seq: 1, version: 1, author_id: 'a', content: 'hi' }], has_more: false, known: 1, max_seen: 1 }],
    users: [],
    pending: [{ nonce: 'n', chat_id: 'c', content: 'later', created_at: '', state: 'queued', error: null, reply_to: null }],
  });
  assert.deepEqual(s.timelines.get('c')?.items[0].attachments, []);
  assert.equal(s.chats.get('c')?.last_message?.attachment_count, 0);
  assert.deepEqual(s.pending.get('n')?.attachments, []);
});
