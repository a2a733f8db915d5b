//! Frames: how an [`Envelope`] becomes bytes on a data channel and back.
//!
//! Byte 0 of every frame is the protocol version, byte 1 the frame kind: a set of flags saying
//! whether the body is JSON (else MessagePack), whether it is LZ4-compressed, and whether the
//! frame is one chunk of a larger message. A body larger than `compress_above` is compressed
//! (when that makes it smaller); a body that still does not fit in `max_frame` is cut into chunks
//! that the receiver's [`Reassembler`] puts back together. A receiver reads either format.
//!
//! ```
//! use bassline_protocol::{Codec, Envelope, Format, Message, Reassembler};
//! let codec = Codec::default();
//! let env = Envelope { id: 1, ts: 1, from: 7, message: Message::StateRequest { have: None, first: vec![], key: None } };
//! let mut rx = Reassembler::new(codec.clone());
//! let mut out = None;
//! for frame in codec.encode(&env).unwrap() {
//!     out = rx.push(&frame).unwrap();
//! }
//! assert_eq!(out, Some(env.clone()));
//! // A JSON frame (for debugging) decodes on a receiver set up for MessagePack.
//! let json = Codec { format: Format::Json, ..Codec::default() };
//! let frames = json.encode(&env).unwrap();
//! assert_eq!(rx.push(&frames[0]).unwrap(), Some(env));
//! ```

use crate::{Envelope, Error, msgpack};

/// The protocol version this build speaks; byte 0 of every frame. 3: operations carry their
/// origin's signature and state requests, states, repairs and batches carry keys. 4: a host's
/// claim to have followers carries a follower's signed word for it (guests sign it in their
/// heartbeats).
pub const VERSION: u8 = 4;

/// Largest frame put on a data channel: every WebRTC implementation accepts 64 KiB messages.
pub const MAX_FRAME: usize = 64 * 1024;

/// Bodies larger than this are compressed by default. Batches of content updates below about
/// 1 KiB do not shrink under LZ4 at all (measured in `docs/ARCHITECTURE.md`), so small messages
/// skip the attempt; larger bodies keep the compressed form only when it is smaller.
pub const COMPRESS_ABOVE: usize = 1024;

/// Frame kind flag: the body is JSON (otherwise MessagePack).
pub(crate) const FLAG_JSON: u8 = 0x01;
/// Frame kind flag: the body is an LZ4 block preceded by its decompressed length (u32 LE).
pub(crate) const FLAG_LZ4: u8 = 0x02;
/// Frame kind flag: the frame is one chunk of a message (a chunk header follows byte 1).
pub(crate) const FLAG_CHUNK: u8 = 0x10;
const KNOWN_FLAGS: u8 = FLAG_JSON | FLAG_LZ4 | FLAG_CHUNK;

/// Chunk header: version, kind, message number (u32 LE), total body length (u32 LE), offset of
/// this chunk in the body (u32 LE).
pub(crate) const CHUNK_HEADER: usize = 2 + 4 + 4 + 4;

/// The most an LZ4 block can expand: each input byte yields at most 255 bytes of match length,
/// plus a few bytes per sequence. A length prefix claiming more is a lie, refused before
/// allocating.
const LZ4_MAX_RATIO: usize = 256;

/// Initial buffer for a chunked message; it grows as chunks arrive, so a peer announcing a large
/// total gets memory only for the bytes it actually sends.
const REASSEMBLY_START: usize = 1 << 20;

/// How message bodies are written. A receiver reads both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Compact positional MessagePack (the default).
    #[default]
    MessagePack,
    /// The messages' serde JSON form, for reading traffic while debugging.
    Json,
}

/// Encoding settings shared by both ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    /// Largest frame to send; larger messages are chunked.
    pub max_frame: usize,
    /// Largest message to send or reassemble (before and after decompression); a peer
    /// announcing more is refused before any allocation.
    pub max_message: usize,
    /// The body format this side writes.
    pub format: Format,
    /// Bodies longer than this many bytes are compressed; `usize::MAX` turns compression off.
    pub compress_above: usize,
}

impl Default for Codec {
    fn default() -> Self {
        Codec {
            max_frame: MAX_FRAME,
            max_message: 256 * 1024 * 1024,
            format: Format::MessagePack,
            compress_above: COMPRESS_ABOVE,
        }
    }
}

impl Codec {
    /// Encodes an envelope into one or more frames, each at most `max_frame` bytes.
    pub fn encode(&self, env: &Envelope) -> Result<Vec<Vec<u8>>, Error> {
        let (mut flags, body) = self.encode_body(env)?;
        if body.len() > self.max_message {
            return Err(Error::TooLarge {
                len: body.len(),
                max: self.max_message,
            });
        }
        let body = if body.len() > self.compress_above {
            let packed = compress(&body)?;
            if packed.len() < body.len() {
                flags |= FLAG_LZ4;
                packed
            } else {
                body
            }
        } else {
            body
        };
        if body.len() + 2 <= self.max_frame {
            let mut frame = Vec::with_capacity(body.len() + 2);
            frame.extend_from_slice(&[VERSION, flags]);
            frame.extend_from_slice(&body);
            return Ok(vec![frame]);
        }
        if self.max_frame <= CHUNK_HEADER {
            return Err(Error::Encode(format!(
                "max_frame must exceed the {CHUNK_HEADER}-byte chunk header"
            )));
        }
        let total = u32::try_from(body.len()).map_err(|_| Error::TooLarge {
            len: body.len(),
            max: u32::MAX as usize,
        })?;
        let room = self.max_frame - CHUNK_HEADER;
        let number = (env.id & 0xffff_ffff) as u32;
        Ok(body
            .chunks(room)
            .enumerate()
            .map(|(i, part)| {
                let mut frame = Vec::with_capacity(part.len() + CHUNK_HEADER);
                frame.extend_from_slice(&[VERSION, flags | FLAG_CHUNK]);
                frame.extend_from_slice(&number.to_le_bytes());
                frame.extend_from_slice(&total.to_le_bytes());
                // Below `total`, which fits in u32.
                frame.extend_from_slice(&((i * room) as u32).to_le_bytes());
                frame.extend_from_slice(part);
                frame
            })
            .collect())
    }

    /// The uncompressed body and the format flag that goes with it.
    fn encode_body(&self, env: &Envelope) -> Result<(u8, Vec<u8>), Error> {
        match self.format {
            Format::MessagePack => {
                let mut body = Vec::with_capacity(64);
                msgpack::encode(env, &mut body)?;
                Ok((0, body))
            }
            Format::Json => serde_json::to_vec(env)
                .map(|b| (FLAG_JSON, b))
                .map_err(|e| Error::Encode(e.to_string())),
        }
    }

    /// Decodes a complete (reassembled) body whose frame kind was `flags`.
    fn decode_body(&self, flags: u8, body: &[u8]) -> Result<Envelope, Error> {
        let unpacked;
        let body = if flags & FLAG_LZ4 != 0 {
            unpacked = self.decompress(body)?;
            &unpacked[..]
        } else {
            body
        };
        if flags & FLAG_JSON != 0 {
            serde_json::from_slice(body).map_err(|e| Error::Malformed(e.to_string()))
        } else {
            msgpack::decode(body)
        }
    }

    fn decompress(&self, packed: &[u8]) -> Result<Vec<u8>, Error> {
        let (len, block) = packed.split_first_chunk::<4>().ok_or(Error::Truncated)?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > self.max_message {
            return Err(Error::TooLarge {
                len,
                max: self.max_message,
            });
        }
        if len > block.len().saturating_mul(LZ4_MAX_RATIO) {
            return Err(Error::Malformed(format!(
                "{} compressed bytes cannot hold the {len} bytes announced",
                block.len()
            )));
        }
        let mut out = vec![0u8; len];
        let n = lz4_flex::block::decompress_into(block, &mut out)
            .map_err(|e| Error::Malformed(format!("bad compressed body: {e}")))?;
        if n != len {
            return Err(Error::Malformed(format!(
                "compressed body holds {n} bytes, announced {len}"
            )));
        }
        Ok(out)
    }
}

fn compress(body: &[u8]) -> Result<Vec<u8>, Error> {
    let len = u32::try_from(body.len()).map_err(|_| Error::TooLarge {
        len: body.len(),
        max: u32::MAX as usize,
    })?;
    let mut out = vec![0u8; 4 + lz4_flex::block::get_maximum_output_size(body.len())];
    out[..4].copy_from_slice(&len.to_le_bytes());
    let n = lz4_flex::block::compress_into(body, &mut out[4..])
        .map_err(|e| Error::Encode(format!("compression failed: {e}")))?;
    out.truncate(4 + n);
    Ok(out)
}

/// A message being reassembled from its chunks.
#[derive(Debug)]
struct Partial {
    number: u32,
    total: usize,
    flags: u8,
    body: Vec<u8>,
}

/// Puts chunked messages back together, one link's frames at a time (frames on one reliable
/// channel arrive in order, and a sender puts all chunks of a message on the channel before the
/// next message). Any error drops the message being reassembled, so the next message decodes.
#[derive(Debug)]
pub struct Reassembler {
    codec: Codec,
    partial: Option<Partial>,
}

fn u32_at(frame: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&frame[at..at + 4]);
    u32::from_le_bytes(b)
}

impl Reassembler {
    pub fn new(codec: Codec) -> Self {
        Reassembler {
            codec,
            partial: None,
        }
    }

    /// Bytes held for a message still being reassembled.
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.body.capacity())
    }

    /// Takes one frame; returns a message when one is complete. After an error the reassembler
    /// has forgotten any partial message and is ready for the next one.
    pub fn push(&mut self, frame: &[u8]) -> Result<Option<Envelope>, Error> {
        let result = self.handle_frame(frame);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    fn handle_frame(&mut self, frame: &[u8]) -> Result<Option<Envelope>, Error> {
        let (&version, rest) = frame.split_first().ok_or(Error::Truncated)?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let (&kind, body) = rest.split_first().ok_or(Error::Truncated)?;
        if kind & !KNOWN_FLAGS != 0 {
            return Err(Error::UnknownKind(kind));
        }
        if kind & FLAG_CHUNK == 0 {
            if self.partial.is_some() {
                return Err(Error::BadChunk(
                    "a whole message arrived in the middle of a chunked one".into(),
                ));
            }
            return self.codec.decode_body(kind, body).map(Some);
        }
        if frame.len() < CHUNK_HEADER {
            return Err(Error::Truncated);
        }
        let flags = kind & !FLAG_CHUNK;
        let number = u32_at(frame, 2);
        let total = u32_at(frame, 6) as usize;
        let offset = u32_at(frame, 10) as usize;
        let part = &frame[CHUNK_HEADER..];
        if total > self.codec.max_message {
            return Err(Error::TooLarge {
                len: total,
                max: self.codec.max_message,
            });
        }
        if part.is_empty() || offset.saturating_add(part.len()) > total {
            return Err(Error::BadChunk(format!(
                "chunk of {} bytes at {offset} does not fit in a message of {total} bytes",
                part.len()
            )));
        }
        match &mut self.partial {
            None if offset == 0 => {
                self.partial = Some(Partial {
                    number,
                    total,
                    flags,
                    body: Vec::with_capacity(total.min(REASSEMBLY_START)),
                });
            }
            None => {
                return Err(Error::BadChunk(format!(
                    "chunk at offset {offset} of message {number} arrived without the chunks before it"
                )));
            }
            Some(p) => {
                if p.number != number || p.total != total || p.flags != flags {
                    return Err(Error::BadChunk(format!(
                        "a chunk of message {number} arrived while message {} was incomplete",
                        p.number
                    )));
                }
                if p.body.len() != offset {
                    return Err(Error::BadChunk(format!(
                        "chunk at offset {offset} of message {number}, expected offset {}",
                        p.body.len()
                    )));
                }
            }
        }
        let p = self
            .partial
            .as_mut()
            .expect("a partial message was found or started above");
        p.body.extend_from_slice(part);
        if p.body.len() < p.total {
            return Ok(None);
        }
        let p = self.partial.take().expect("checked above");
        self.codec.decode_body(p.flags, &p.body).map(Some)
    }
}
