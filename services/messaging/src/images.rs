//! Images as they are uploaded (issue 18, attachments): which kind a file is, by its first
//! bytes; its dimensions, from its header; refused past [`MAX_PIXELS`] before anything would
//! decode it (a decompression bomb is a small file that claims a huge picture); and its
//! metadata removed while it streams past, losslessly, so that what is stored never held
//! EXIF or XMP (where a photo was taken, the camera, the author).
//!
//! [`Scrubber`] takes the upload chunk by chunk and gives back the bytes to store:
//! - JPEG: APP1 (EXIF, XMP), APP13 (Photoshop, IPTC) and comment segments are dropped; the
//!   colour profile (APP2) and the rest are kept;
//! - PNG: the text chunks (`tEXt`, `zTXt`, `iTXt`, where XMP lives) and `eXIf` are dropped;
//! - WebP: `EXIF` and `XMP ` chunks are erased in place (renamed `JUNK`, their bytes zeroed:
//!   the file's size is written at its start, so nothing can be dropped while streaming) and
//!   the `VP8X` flags that announced them cleared.
//!
//! - GIF: comment extensions and the XMP application block are dropped, and nothing after the
//!   trailer is stored (a file hidden behind a picture).
//!
//! Anything else passes through unchanged and is not an image here.

use std::fmt;

/// The largest picture accepted: 40 megapixels (a 7,000 × 5,700 photo).
pub const MAX_PIXELS: u64 = 40_000_000;

/// What kind of image an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    Webp,
    Gif,
}

impl Kind {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }
}

/// An image, measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    pub kind: Kind,
    pub width: u32,
    pub height: u32,
}

/// Why an upload that says it is an image is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It claims more than [`MAX_PIXELS`].
    TooManyPixels { width: u32, height: u32 },
    /// Its structure is broken (a segment or chunk runs past the end, no dimensions).
    Malformed(&'static str),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyPixels { width, height } => write!(
                f,
                "the image is {width} × {height} pixels; at most {MAX_PIXELS} are accepted"
            ),
            Self::Malformed(what) => write!(f, "the image is malformed: {what}"),
        }
    }
}

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// The size of a GIF colour table announced by a flags byte (none unless its top bit is set).
fn colour_table(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 0x07) + 1)
    }
}

/// Where the scrubber is in the file.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Not enough bytes yet to tell what the file is.
    Sniffing,
    /// Not an image, or a JPEG's image data: everything passes.
    Through,
    /// JPEG, before the image data: at a marker.
    JpegMarker,
    /// PNG: at a chunk's length and type.
    PngChunkHeader,
    /// WebP: at a chunk's type and size.
    WebpChunkHeader,
    /// GIF: at a block (an extension, an image, the trailer).
    GifBlock,
    /// GIF: at the length of the next data sub-block of a block passed as `Pass` says.
    GifSubBlock(Pass),
    /// After a GIF's trailer: nothing more is stored.
    GifEnd,
    /// Inside a segment or chunk: its next `left` bytes, passed as `pass` says, then `next`.
    Body { left: usize, pass: Pass, next: Next },
}

/// What becomes of a segment's or chunk's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Keep,
    Drop,
    /// Stored as zeros: a WebP chunk cannot be dropped without changing the file's size,
    /// written at its start; it is renamed to a type decoders skip and its data erased.
    Zero,
}

/// Where a segment or chunk leads once its body is through.
#[derive(Debug, Clone, Copy)]
enum Next {
    JpegMarker,
    /// A JPEG scan header: the image data follows.
    JpegData,
    PngChunkHeader,
    WebpChunkHeader,
    GifBlock,
    GifSubBlock(Pass),
}

/// Takes an upload's bytes as they arrive and gives back what to store.
#[derive(Debug)]
pub struct Scrubber {
    state: State,
    /// Bytes read but not decided on yet (a header split between chunks).
    pending: Vec<u8>,
    kind: Option<Kind>,
    size: Option<(u32, u32)>,
}

impl Default for Scrubber {
    fn default() -> Self {
        Self::new()
    }
}

impl Scrubber {
    pub fn new() -> Self {
        Self {
            state: State::Sniffing,
            pending: Vec::new(),
            kind: None,
            size: None,
        }
    }

    /// Takes the next bytes of the upload; gives back those to store now.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Refused> {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        while at < bytes.len() {
            match self.step(&bytes[at..], &mut out)? {
                Some(used) => at += used,
                None => break,
            }
        }
        bytes.drain(..at);
        self.pending = bytes;
        Ok(out)
    }

    /// The end of the upload: the image it was (`None`: not an image), and the bytes left.
    pub fn finish(mut self) -> Result<(Option<Image>, Vec<u8>), Refused> {
        let out = match self.state {
            State::Sniffing | State::Through => std::mem::take(&mut self.pending),
            // A PNG or WebP file ends after its last chunk.
            State::PngChunkHeader | State::WebpChunkHeader if self.pending.is_empty() => Vec::new(),
            State::GifEnd => Vec::new(),
            _ => return Err(Refused::Malformed("it ends in the middle of its header")),
        };
        let image = match (self.kind, self.size) {
            (Some(kind), Some((width, height))) => Some(Image {
                kind,
                width,
                height,
            }),
            (Some(_), None) => return Err(Refused::Malformed("it gives no dimensions")),
            (None, _) => None,
        };
        Ok((image, out))
    }

    /// One step over `bytes` (those not decided on yet): how many it used, or `None` when it
    /// needs more.
    fn step(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, Refused> {
        match self.state {
            State::Sniffing => self.sniff(bytes, out),
            State::Through => {
                out.extend_from_slice(bytes);
                Ok(Some(bytes.len()))
            }
            State::JpegMarker => self.jpeg_marker(bytes, out),
            State::PngChunkHeader => self.png_chunk_header(bytes, out),
            State::WebpChunkHeader => self.webp_chunk_header(bytes, out),
            State::GifBlock => self.gif_block(bytes, out),
            State::GifSubBlock(pass) => {
                let length = usize::from(bytes[0]);
                if pass == Pass::Keep {
                    out.push(bytes[0]);
                }
                self.state = if length == 0 {
                    State::GifBlock
                } else {
                    State::Body {
                        left: length,
                        pass,
                        next: Next::GifSubBlock(pass),
                    }
                };
                Ok(Some(1))
            }
            State::GifEnd => Ok(Some(bytes.len())),
            State::Body { left, pass, next } => {
                let n = left.min(bytes.len());
                match pass {
                    Pass::Keep => out.extend_from_slice(&bytes[..n]),
                    Pass::Drop => {}
                    Pass::Zero => out.resize(out.len() + n, 0),
                }
                self.state = if n < left {
                    State::Body {
                        left: left - n,
                        pass,
                        next,
                    }
                } else {
                    match next {
                        Next::JpegMarker => State::JpegMarker,
                        Next::JpegData => State::Through,
                        Next::PngChunkHeader => State::PngChunkHeader,
                        Next::WebpChunkHeader => State::WebpChunkHeader,
                        Next::GifBlock => State::GifBlock,
                        Next::GifSubBlock(pass) => State::GifSubBlock(pass),
                    }
                };
                Ok(Some(n))
            }
        }
    }

    /// What the file is, from its first bytes.
    fn sniff(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, Refused> {
        if bytes.starts_with(PNG_SIGNATURE) {
            self.kind = Some(Kind::Png);
            self.state = State::PngChunkHeader;
            out.extend_from_slice(PNG_SIGNATURE);
            return Ok(Some(PNG_SIGNATURE.len()));
        }
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            self.kind = Some(Kind::Jpeg);
            self.state = State::JpegMarker;
            out.extend_from_slice(&bytes[..2]);
            return Ok(Some(2));
        }
        if bytes.len() >= 13 && (bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
            self.kind = Some(Kind::Gif);
            let width = u32::from(u16::from_le_bytes([bytes[6], bytes[7]]));
            let height = u32::from(u16::from_le_bytes([bytes[8], bytes[9]]));
            self.measured(width, height)?;
            out.extend_from_slice(&bytes[..13]);
            // The global colour table, if any, follows.
            self.state = State::Body {
                left: colour_table(bytes[10]),
                pass: Pass::Keep,
                next: Next::GifBlock,
            };
            return Ok(Some(13));
        }
        if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            self.kind = Some(Kind::Webp);
            self.state = State::WebpChunkHeader;
            out.extend_from_slice(&bytes[..12]);
            return Ok(Some(12));
        }
        let riff = if bytes.len() <= 4 {
            b"RIFF".starts_with(bytes)
        } else {
            bytes.starts_with(b"RIFF") && b"WEBP".starts_with(&bytes[8.min(bytes.len())..])
        };
        let could_be = PNG_SIGNATURE.starts_with(bytes)
            || [0xFF, 0xD8, 0xFF].starts_with(bytes)
            || (riff && bytes.len() < 12)
            || (bytes.len() < 13
                && bytes.len() >= 6
                && (bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")))
            || (bytes.len() < 6 && (b"GIF87a".starts_with(bytes) || b"GIF89a".starts_with(bytes)));
        if could_be {
            return Ok(None);
        }
        self.state = State::Through;
        Ok(Some(0))
    }

    /// A JPEG marker and, for a segment, its length (and a frame header's dimensions).
    fn jpeg_marker(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, Refused> {
        if bytes.len() < 2 {
            return Ok(None);
        }
        if bytes[0] != 0xFF {
            return Err(Refused::Malformed(
                "a JPEG segment does not start with a marker",
            ));
        }
        let marker = bytes[1];
        if marker == 0xFF {
            return Ok(Some(1)); // a fill byte before the marker
        }
        // Markers without a length (TEM, RSTn, EOI).
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) || marker == 0xD9 {
            out.extend_from_slice(&bytes[..2]);
            return Ok(Some(2));
        }
        if bytes.len() < 4 {
            return Ok(None);
        }
        let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if length < 2 {
            return Err(Refused::Malformed(
                "a JPEG segment is shorter than its length field",
            ));
        }
        let frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if frame {
            // Precision (1 byte), then height and width (2 each).
            if bytes.len() < 9 {
                return Ok(None);
            }
            let height = u32::from(u16::from_be_bytes([bytes[5], bytes[6]]));
            let width = u32::from(u16::from_be_bytes([bytes[7], bytes[8]]));
            self.measured(width, height)?;
        }
        let scan = marker == 0xDA;
        if scan && self.size.is_none() {
            return Err(Refused::Malformed(
                "a JPEG scan starts before its frame header",
            ));
        }
        // APP1 (EXIF, XMP), APP13 (Photoshop, IPTC), COM: dropped.
        let keep = !matches!(marker, 0xE1 | 0xED | 0xFE);
        if keep {
            out.extend_from_slice(&bytes[..4]);
        }
        let next = if scan {
            Next::JpegData
        } else {
            Next::JpegMarker
        };
        self.state = State::Body {
            left: length - 2,
            pass: if keep { Pass::Keep } else { Pass::Drop },
            next,
        };
        Ok(Some(4))
    }

    /// A PNG chunk's length and type (and the dimensions in `IHDR`).
    fn png_chunk_header(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, Refused> {
        if bytes.len() < 8 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let length =
            usize::try_from(length).map_err(|_| Refused::Malformed("a PNG chunk is too long"))?;
        let kind = &bytes[4..8];
        if kind == b"IHDR" {
            if bytes.len() < 16 {
                return Ok(None);
            }
            let width = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            let height = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
            self.measured(width, height)?;
        } else if self.size.is_none() {
            return Err(Refused::Malformed("a PNG chunk comes before IHDR"));
        }
        let keep = !matches!(kind, b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf");
        if keep {
            out.extend_from_slice(&bytes[..8]);
        }
        // The data, then a 4-byte CRC.
        self.state = State::Body {
            left: length + 4,
            pass: if keep { Pass::Keep } else { Pass::Drop },
            next: Next::PngChunkHeader,
        };
        Ok(Some(8))
    }

    /// A WebP chunk's type and size; the canvas or frame size in `VP8X`, `VP8 `, `VP8L` and
    /// `ANMF`. `EXIF` and `XMP ` chunks are erased, and `VP8X` no longer says they are there.
    fn webp_chunk_header(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, Refused> {
        if bytes.len() < 8 {
            return Ok(None);
        }
        let fourcc: [u8; 4] = [bytes[0], bytes[1], bytes[2], bytes[3]];
        let size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let size =
            usize::try_from(size).map_err(|_| Refused::Malformed("a WebP chunk is too long"))?;
        // Chunks are padded to an even length.
        let body = size + (size & 1);
        let u24 = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], 0]);
        let (read, header): (usize, Vec<u8>) = match &fourcc {
            b"VP8X" => {
                if bytes.len() < 18 || size < 10 {
                    return self.need(bytes.len() < 18);
                }
                self.measured(u24(12) + 1, u24(15) + 1)?;
                // Flags: bit 3 EXIF, bit 2 XMP.
                let mut header = bytes[..18].to_vec();
                header[8] &= !(0x08 | 0x04);
                (18, header)
            }
            b"VP8 " => {
                if bytes.len() < 18 || size < 10 {
                    return self.need(bytes.len() < 18);
                }
                if bytes[11..14] != [0x9D, 0x01, 0x2A] {
                    return Err(Refused::Malformed("a WebP VP8 frame lacks its start code"));
                }
                let width = u32::from(u16::from_le_bytes([bytes[14], bytes[15]]) & 0x3FFF);
                let height = u32::from(u16::from_le_bytes([bytes[16], bytes[17]]) & 0x3FFF);
                self.measure_frame(width, height)?;
                (18, bytes[..18].to_vec())
            }
            b"VP8L" => {
                if bytes.len() < 13 || size < 5 {
                    return self.need(bytes.len() < 13);
                }
                if bytes[8] != 0x2F {
                    return Err(Refused::Malformed("a WebP VP8L frame lacks its signature"));
                }
                let bits = u32::from_le_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]);
                self.measure_frame((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)?;
                (13, bytes[..13].to_vec())
            }
            b"ANMF" => {
                if bytes.len() < 20 || size < 12 {
                    return self.need(bytes.len() < 20);
                }
                let (width, height) = (u24(14) + 1, u24(17) + 1);
                if u64::from(width) * u64::from(height) > MAX_PIXELS {
                    return Err(Refused::TooManyPixels { width, height });
                }
                (20, bytes[..20].to_vec())
            }
            b"EXIF" | b"XMP " => {
                out.extend_from_slice(b"JUNK");
                out.extend_from_slice(&bytes[4..8]);
                self.state = State::Body {
                    left: body,
                    pass: Pass::Zero,
                    next: Next::WebpChunkHeader,
                };
                return Ok(Some(8));
            }
            _ => (8, bytes[..8].to_vec()),
        };
        out.extend_from_slice(&header);
        self.state = State::Body {
            left: body - (read - 8),
            pass: Pass::Keep,
            next: Next::WebpChunkHeader,
        };
        Ok(Some(read))
    }

    /// A GIF block: an extension (comments and XMP dropped, the rest kept), an image (its
    /// size checked), or the trailer (nothing after it is stored).
    fn gif_block(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, Refused> {
        match bytes[0] {
            0x3B => {
                out.push(0x3B);
                self.state = State::GifEnd;
                Ok(Some(1))
            }
            0x2C => {
                // Left, top, width, height (2 bytes each), flags; then a local colour table,
                // the LZW code size, and the data's sub-blocks.
                if bytes.len() < 10 {
                    return Ok(None);
                }
                let width = u32::from(u16::from_le_bytes([bytes[5], bytes[6]]));
                let height = u32::from(u16::from_le_bytes([bytes[7], bytes[8]]));
                if u64::from(width) * u64::from(height) > MAX_PIXELS {
                    return Err(Refused::TooManyPixels { width, height });
                }
                out.extend_from_slice(&bytes[..10]);
                self.state = State::Body {
                    left: colour_table(bytes[9]) + 1,
                    pass: Pass::Keep,
                    next: Next::GifSubBlock(Pass::Keep),
                };
                Ok(Some(10))
            }
            0x21 => {
                if bytes.len() < 2 {
                    return Ok(None);
                }
                let pass = match bytes[1] {
                    0xFE => Pass::Drop, // a comment
                    0xFF => {
                        // An application's block: its first sub-block names it.
                        if bytes.len() < 14 {
                            return Ok(None);
                        }
                        if bytes[2] == 11 && &bytes[3..14] == b"XMP DataXMP" {
                            Pass::Drop
                        } else {
                            Pass::Keep
                        }
                    }
                    _ => Pass::Keep,
                };
                if pass == Pass::Keep {
                    out.extend_from_slice(&bytes[..2]);
                }
                self.state = State::GifSubBlock(pass);
                Ok(Some(2))
            }
            _ => Err(Refused::Malformed("a GIF block of an unknown kind")),
        }
    }

    /// More bytes are needed (`short`), or a chunk is too small for its own header.
    fn need(&self, short: bool) -> Result<Option<usize>, Refused> {
        if short {
            Ok(None)
        } else {
            Err(Refused::Malformed(
                "a WebP chunk is shorter than its header",
            ))
        }
    }

    /// A frame's size: the image's, unless a canvas (`VP8X`) already gave it.
    fn measure_frame(&mut self, width: u32, height: u32) -> Result<(), Refused> {
        match self.size {
            Some(_) if u64::from(width) * u64::from(height) > MAX_PIXELS => {
                Err(Refused::TooManyPixels { width, height })
            }
            Some(_) => Ok(()),
            None => self.measured(width, height),
        }
    }

    fn measured(&mut self, width: u32, height: u32) -> Result<(), Refused> {
        if u64::from(width) * u64::from(height) > MAX_PIXELS {
            return Err(Refused::TooManyPixels { width, height });
        }
        if width == 0 || height == 0 {
            return Err(Refused::Malformed("it is zero pixels wide or high"));
        }
        self.size = Some((width, height));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG segment: marker, length, body.
    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let length = u16::try_from(body.len() + 2).unwrap().to_be_bytes();
        [&[0xFF, marker][..], &length, body].concat()
    }

    /// A PNG chunk: length, type, data, a CRC (not checked here).
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let length = u32::try_from(data.len()).unwrap().to_be_bytes();
        [&length[..], kind, data, &[0, 0, 0, 0]].concat()
    }

    fn frame(width: u16, height: u16) -> Vec<u8> {
        [
            &[8][..],
            &height.to_be_bytes(),
            &width.to_be_bytes(),
            &[1, 1, 0x11, 0],
        ]
        .concat()
    }

    fn ihdr(width: u32, height: u32) -> Vec<u8> {
        chunk(
            b"IHDR",
            &[
                &width.to_be_bytes()[..],
                &height.to_be_bytes(),
                &[8, 6, 0, 0, 0],
            ]
            .concat(),
        )
    }

    /// Scrubs `file` fed `size` bytes at a time.
    fn scrub(file: &[u8], size: usize) -> Result<(Option<Image>, Vec<u8>), Refused> {
        let mut scrubber = Scrubber::new();
        let mut stored = Vec::new();
        for piece in file.chunks(size) {
            stored.extend(scrubber.push(piece)?);
        }
        let (image, rest) = scrubber.finish()?;
        stored.extend(rest);
        Ok((image, stored))
    }

    fn holds(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_jpeg_loses_its_exif_xmp_and_comments_and_keeps_the_rest() {
        let kept = [
            segment(0xE0, b"JFIF\0\x01\x02"),
            segment(0xE2, b"ICC_PROFILE\0colours"),
            segment(0xC0, &frame(640, 480)),
            segment(0xDA, &[1, 1, 0, 0, 0x3F, 0]),
            b"\x12\x34\xFF\x00entropy-coded data with Exif in it".to_vec(),
            vec![0xFF, 0xD9],
        ];
        let file = [
            vec![0xFF, 0xD8],
            kept[0].clone(),
            segment(0xE1, b"Exif\0\0GPS 48.8584 N 2.2945 E"),
            segment(
                0xE1,
                b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>author</x:xmpmeta>",
            ),
            kept[1].clone(),
            segment(0xED, b"Photoshop 3.0\0IPTC"),
            segment(0xFE, b"a comment"),
            kept[2].clone(),
            kept[3].clone(),
            kept[4].clone(),
            kept[5].clone(),
        ]
        .concat();
        let expected = [vec![0xFF, 0xD8], kept.concat()].concat();
        for size in [1, 3, 7, 64, file.len()] {
            let (image, stored) = scrub(&file, size).unwrap();
            assert_eq!(
                image,
                Some(Image {
                    kind: Kind::Jpeg,
                    width: 640,
                    height: 480
                }),
                "fed {size} at a time"
            );
            assert_eq!(stored, expected, "fed {size} at a time");
            assert!(
                !holds(&stored, b"GPS") && !holds(&stored, b"xmpmeta") && !holds(&stored, b"IPTC")
            );
        }
    }

    #[test]
    fn a_png_loses_its_text_and_exif_chunks_and_keeps_the_rest() {
        let kept = [
            ihdr(320, 200),
            chunk(b"iCCP", b"profile"),
            chunk(b"IDAT", b"pixels"),
            chunk(b"IEND", b""),
        ];
        let file = [
            PNG_SIGNATURE.to_vec(),
            kept[0].clone(),
            chunk(b"tEXt", b"Author\0someone"),
            chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>"),
            chunk(b"eXIf", b"MM\0*GPS"),
            kept[1].clone(),
            chunk(b"zTXt", b"Comment\0\0zipped"),
            kept[2].clone(),
            kept[3].clone(),
        ]
        .concat();
        let expected = [PNG_SIGNATURE.to_vec(), kept.concat()].concat();
        for size in [1, 5, 13, file.len()] {
            let (image, stored) = scrub(&file, size).unwrap();
            assert_eq!(
                image,
                Some(Image {
                    kind: Kind::Png,
                    width: 320,
                    height: 200
                })
            );
            assert_eq!(stored, expected, "fed {size} at a time");
        }
    }

    #[test]
    fn a_picture_claiming_too_many_pixels_is_refused_from_its_header() {
        // A few bytes that claim 100,000 × 100,000 pixels: refused before any pixel data.
        let png = [PNG_SIGNATURE.to_vec(), ihdr(100_000, 100_000)].concat();
        assert_eq!(
            Scrubber::new().push(&png),
            Err(Refused::TooManyPixels {
                width: 100_000,
                height: 100_000
            })
        );
        let jpeg = [vec![0xFF, 0xD8], segment(0xC2, &frame(65_000, 65_000))].concat();
        assert!(matches!(
            Scrubber::new().push(&jpeg),
            Err(Refused::TooManyPixels { .. })
        ));
        // 40 megapixels exactly is accepted.
        let fits = [PNG_SIGNATURE.to_vec(), ihdr(8_000, 5_000)].concat();
        assert!(Scrubber::new().push(&fits).is_ok());
    }

    /// A WebP chunk: type, little-endian size, data, a pad byte to an even length.
    fn riff(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let size = u32::try_from(data.len()).unwrap().to_le_bytes();
        let pad: &[u8] = if data.len() % 2 == 1 { &[0] } else { &[] };
        [&fourcc[..], &size, data, pad].concat()
    }

    fn webp(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body = chunks.concat();
        let size = u32::try_from(body.len() + 4).unwrap().to_le_bytes();
        [&b"RIFF"[..], &size, b"WEBP", &body].concat()
    }

    /// `VP8X` with flags, a canvas of `width` × `height`.
    fn vp8x(flags: u8, width: u32, height: u32) -> Vec<u8> {
        let w = (width - 1).to_le_bytes();
        let h = (height - 1).to_le_bytes();
        riff(
            b"VP8X",
            &[flags, 0, 0, 0, w[0], w[1], w[2], h[0], h[1], h[2]],
        )
    }

    /// A lossless frame header of `width` × `height`, then some data.
    fn vp8l(width: u32, height: u32) -> Vec<u8> {
        let bits = (width - 1) | ((height - 1) << 14);
        riff(
            b"VP8L",
            &[&[0x2F][..], &bits.to_le_bytes(), b"pixels"].concat(),
        )
    }

    #[test]
    fn a_webp_has_its_exif_and_xmp_erased_in_place_and_its_flags_cleared() {
        let exif = riff(b"EXIF", b"MM\0*GPS 48.8584 N");
        let xmp = riff(b"XMP ", b"<x:xmpmeta>author</x:xmpmeta>");
        let file = webp(&[
            vp8x(0x08 | 0x04 | 0x10, 1920, 1080),
            vp8l(1920, 1080),
            exif.clone(),
            xmp.clone(),
        ]);
        for size in [1, 7, file.len()] {
            let (image, stored) = scrub(&file, size).unwrap();
            assert_eq!(
                image,
                Some(Image {
                    kind: Kind::Webp,
                    width: 1920,
                    height: 1080
                })
            );
            assert_eq!(stored.len(), file.len(), "the RIFF size still holds");
            assert!(
                !holds(&stored, b"GPS") && !holds(&stored, b"xmpmeta") && !holds(&stored, b"EXIF")
            );
            assert_eq!(stored[20], 0x10, "only the alpha flag is left");
            let erased = [
                b"JUNK".to_vec(),
                exif[4..8].to_vec(),
                vec![0; exif.len() - 8],
            ]
            .concat();
            assert!(
                holds(&stored, &erased),
                "the EXIF chunk, renamed and zeroed"
            );
        }
        // A simple lossy file: its size from the VP8 frame header.
        let frame = [
            &[0x50, 0x00, 0x00, 0x9D, 0x01, 0x2A][..],
            &640u16.to_le_bytes(),
            &360u16.to_le_bytes(),
            b"data",
        ]
        .concat();
        let lossy = webp(&[riff(b"VP8 ", &frame)]);
        assert_eq!(
            scrub(&lossy, 3).unwrap(),
            (
                Some(Image {
                    kind: Kind::Webp,
                    width: 640,
                    height: 360
                }),
                lossy.clone()
            )
        );
    }

    #[test]
    fn a_webp_claiming_too_many_pixels_is_refused() {
        let canvas = webp(&[vp8x(0, 16_384, 16_384)]);
        assert!(matches!(
            scrub(&canvas, 64),
            Err(Refused::TooManyPixels { .. })
        ));
        let frame = webp(&[vp8l(16_384, 16_384)]);
        assert!(matches!(
            scrub(&frame, 64),
            Err(Refused::TooManyPixels { .. })
        ));
        // An animation frame bigger than any image accepted, on a small canvas.
        let w = (16_000u32 - 1).to_le_bytes();
        let anmf = riff(
            b"ANMF",
            &[
                0, 0, 0, 0, 0, 0, w[0], w[1], w[2], w[0], w[1], w[2], 0, 0, 0, 0,
            ],
        );
        let animated = webp(&[vp8x(0x02, 100, 100), anmf]);
        assert!(matches!(
            scrub(&animated, 64),
            Err(Refused::TooManyPixels { .. })
        ));
    }

    /// A GIF image descriptor of `width` × `height`, its LZW code size and one data block.
    fn gif_image(width: u16, height: u16) -> Vec<u8> {
        [
            &[0x2C, 0, 0, 0, 0][..],
            &width.to_le_bytes(),
            &height.to_le_bytes(),
            &[0x00, 0x02, 0x02, 0x4C, 0x01, 0x00],
        ]
        .concat()
    }

    #[test]
    fn a_gif_loses_its_comments_and_xmp_and_nothing_after_its_trailer_is_stored() {
        let screen = [
            &b"GIF89a"[..],
            &200u16.to_le_bytes(),
            &100u16.to_le_bytes(),
            &[0x80, 0, 0],
            &[0, 0, 0, 255, 255, 255],
        ]
        .concat();
        let looping = [&[0x21, 0xFF, 11][..], b"NETSCAPE2.0", &[3, 1, 0, 0, 0]].concat();
        let control = vec![0x21, 0xF9, 4, 0, 0, 0, 0, 0];
        let comment = [&[0x21, 0xFE, 9][..], b"by alice.", &[0]].concat();
        let xmp = [
            &[0x21, 0xFF, 11][..],
            b"XMP DataXMP",
            &[12][..],
            b"<x:xmpmeta/>",
            &[0],
        ]
        .concat();
        let image = gif_image(200, 100);
        let file = [
            screen.clone(),
            looping.clone(),
            comment,
            xmp,
            control.clone(),
            image.clone(),
            vec![0x3B],
            b"PK\x03\x04 a zip hidden after the end".to_vec(),
        ]
        .concat();
        let expected = [screen, looping, control, image, vec![0x3B]].concat();
        for size in [1, 4, 9, file.len()] {
            let (found, stored) = scrub(&file, size).unwrap();
            assert_eq!(
                found,
                Some(Image {
                    kind: Kind::Gif,
                    width: 200,
                    height: 100
                })
            );
            assert_eq!(stored, expected, "fed {size} at a time");
        }
    }

    #[test]
    fn a_gif_claiming_too_many_pixels_is_refused() {
        let huge = [
            &b"GIF87a"[..],
            &65_535u16.to_le_bytes(),
            &65_535u16.to_le_bytes(),
            &[0, 0, 0],
        ]
        .concat();
        assert!(matches!(
            scrub(&huge, 64),
            Err(Refused::TooManyPixels { .. })
        ));
        let small = [
            &b"GIF87a"[..],
            &10u16.to_le_bytes(),
            &10u16.to_le_bytes(),
            &[0, 0, 0],
        ]
        .concat();
        let frame = [small, gif_image(20_000, 20_000), vec![0x3B]].concat();
        assert!(matches!(
            scrub(&frame, 64),
            Err(Refused::TooManyPixels { .. })
        ));
    }

    #[test]
    fn broken_images_are_refused_and_other_files_pass_unchanged() {
        // Data before the frame header, a chunk before IHDR, a file cut in its header.
        let scan_first = [vec![0xFF, 0xD8], segment(0xDA, &[1, 1, 0, 0, 0x3F, 0])].concat();
        assert!(scrub(&scan_first, 4).is_err());
        let no_ihdr = [PNG_SIGNATURE.to_vec(), chunk(b"IDAT", b"x")].concat();
        assert!(scrub(&no_ihdr, 4).is_err());
        let cut = [PNG_SIGNATURE.to_vec(), ihdr(10, 10)[..10].to_vec()].concat();
        assert!(scrub(&cut, 4).is_err());
        assert!(
            scrub(&[0xFF, 0xD8, 0xFF, 0xD9], 1).is_err(),
            "a JPEG without dimensions"
        );
        for other in [
            &b"%PDF-1.7 Exif"[..],
            b"",
            b"\xFF",
            b"\x89PN",
            b"hello, world",
        ] {
            for size in [1, 2, 64] {
                assert_eq!(scrub(other, size), Ok((None, other.to_vec())), "{other:?}");
            }
        }
    }
}
