// files.mjs — files for the browser story to attach, made here rather than kept in the
// repository: PNG pictures (a sunset, optionally with noise so that it does not compress and
// takes a while to upload) and text files, written to a fresh temporary directory.

import zlib from 'node:zlib';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 as PNG chunks carry it. @param {Buffer} bytes */
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, data, CRC of type and data. @param {string} type @param {Buffer} data */
function chunk(type, data) {
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/**
 * A sunset over the sea as an RGB PNG of `width` × `height`; with `noise`, every pixel
 * jittered, so the file stays large (about 3 bytes a pixel).
 * @param {number} width @param {number} height @param {{ noise?: boolean }} [opts]
 */
export function sunsetPng(width, height, { noise = false } = {}) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // RGB
  const stride = width * 3 + 1;
  const rows = Buffer.alloc(stride * height); // each row starts with filter 0
  for (let y = 0; y < height; y++) {
    const t = y / height;
    for (let x = 0; x < width; x++) {
      let rgb = [250 - 90 * t, 190 - 150 * t, 90 + 120 * t];
      if (Math.hypot(x - width / 2, y - height * 0.62) < Math.min(width, height) * 0.18) rgb = [255, 214, 120];
      if (y > height * 0.7) rgb = [40 + 30 * t, 50 + 40 * t, 110 + 60 * t];
      for (let i = 0; i < 3; i++) {
        const v = rgb[i] + (noise ? Math.random() * 60 - 30 : 0);
        rows[y * stride + 1 + x * 3 + i] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** The story's files, in a new temporary directory: their paths, and the text file's words. */
export async function storyFiles() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'astral-files-'));
  const notes = 'Saturday\n- snacks: bob\n- drinks: alice\n';
  const files = {
    dir,
    sunset: path.join(dir, 'sunset.png'),
    slow: path.join(dir, 'holiday-album.png'),
    notes: path.join(dir, 'notes.txt'),
    notesText: notes,
    /** Five small files, chosen at once (more than the three the server takes at a time). */
    parts: [1, 2, 3, 4, 5].map((n) => path.join(dir, `part-${n}.txt`)),
  };
  await writeFile(files.sunset, sunsetPng(640, 400));
  await writeFile(files.slow, sunsetPng(900, 1200, { noise: true }));
  await writeFile(files.notes, notes);
  for (const [i, part] of files.parts.entries()) await writeFile(part, `part ${i + 1} of ${files.parts.length}\n`.repeat(2000));
  return files;
}
