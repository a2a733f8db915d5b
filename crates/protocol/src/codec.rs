//! Frames: how an [`Envelope`] becomes bytes on a data channel and back.
//!
//! Byte 0 of every frame is the protocol version, byte 1 the frame kind. A message whose encoding
//! exceeds `max_frame` is cut into chunks that the receiver's [`Reassembler`] puts back together.
//!
//! ```
//! use bassline_protocol::{Codec, Envelope, Message, Reassembler};
//! let codec = Codec::default();
//! let env = Envelope { id: 1, ts: 1, from: 7, message: Message::StateRequest { have: None } };
//! let mut rx = Reassembler::new(codec.clone());
//! let mut out = None;
//! for frame in codec.encode(&env).unwrap() {
//!     out = rx.push(&frame).unwrap();
//! }
//! assert_eq!(out, Some(env));
//! ```

use crate::{Envelope, Error};

/// The protocol version this build speaks; byte 0 of every frame.
pub const VERSION: u8 = 1;

/// Largest frame put on a data channel: every WebRTC implementation accepts 64 KiB messages.
pub const MAX_FRAME: usize = 64 * 1024;

const KIND_WHOLE_JSON: u8 = 0x01;
const KIND_CHUNK: u8 = 0x10;
/// Chunk header: version, kind, message number (u32), total length (u32), offset (u32).
const CHUNK_HEADER: usize = 2 + 4 + 4 + 4;

/// Encoding settings shared by both ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    /// Largest frame to send; larger messages are chunked.
    pub max_frame: usize,
    /// Largest message to reassemble; a peer announcing more is refused before any allocation.
    pub max_message: usize,
}

impl Default for Codec {
    fn default() -> Self {
        Codec {
            max_frame: MAX_FRAME,
            max_message: 256 * 1024 * 1024,
        }
    }
}

impl Codec {
    /// Encodes an envelope into one or more frames.
    pub fn encode(&self, env: &Envelope) -> Result<Vec<Vec<u8>>, Error> {
        let body = serde_json::to_vec(env).map_err(|e| Error::Encode(e.to_string()))?;
        if body.len() + 2 <= self.max_frame {
            let mut frame = Vec::with_capacity(body.len() + 2);
            frame.extend_from_slice(&[VERSION, KIND_WHOLE_JSON]);
            frame.extend_from_slice(&body);
            return Ok(vec![frame]);
        }
        if body.len() > self.max_message {
            return Err(Error::TooLarge {
                len: body.len(),
                max: self.max_message,
            });
        }
        let room = self.max_frame - CHUNK_HEADER;
        let number = (env.id & 0xffff_ffff) as u32;
        Ok(body
            .chunks(room)
            .enumerate()
            .map(|(i, part)| {
                let mut frame = Vec::with_capacity(part.len() + CHUNK_HEADER);
                frame.extend_from_slice(&[VERSION, KIND_CHUNK]);
                frame.extend_from_slice(&number.to_le_bytes());
                frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
                frame.extend_from_slice(&((i * room) as u32).to_le_bytes());
                frame.extend_from_slice(part);
                frame
            })
            .collect())
    }

    fn decode_body(&self, body: &[u8]) -> Result<Envelope, Error> {
        serde_json::from_slice(body).map_err(|e| Error::Malformed(e.to_string()))
    }
}

/// Puts chunked messages back together, one link's frames at a time (frames on one reliable
/// channel arrive in order).
#[derive(Debug)]
pub struct Reassembler {
    codec: Codec,
    partial: Option<(u32, usize, Vec<u8>)>,
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
        self.partial.as_ref().map_or(0, |(_, _, b)| b.capacity())
    }

    /// Takes one frame; returns a message when one is complete.
    pub fn push(&mut self, frame: &[u8]) -> Result<Option<Envelope>, Error> {
        let (&version, rest) = frame.split_first().ok_or(Error::Truncated)?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let (&kind, body) = rest.split_first().ok_or(Error::Truncated)?;
        match kind {
            KIND_WHOLE_JSON => {
                self.partial = None;
                self.codec.decode_body(body).map(Some)
            }
            KIND_CHUNK => {
                if frame.len() < CHUNK_HEADER {
                    return Err(Error::Truncated);
                }
                let number = u32_at(frame, 2);
                let total = u32_at(frame, 6) as usize;
                let offset = u32_at(frame, 10) as usize;
                let part = &frame[CHUNK_HEADER..];
                if total > self.codec.max_message {
                    self.partial = None;
                    return Err(Error::TooLarge {
                        len: total,
                        max: self.codec.max_message,
                    });
                }
                if offset == 0 {
                    self.partial = Some((number, total, Vec::with_capacity(total.min(1 << 20))));
                }
                let Some((n, t, buf)) = &mut self.partial else {
                    return Err(Error::Malformed(
                        "a chunk arrived without its first part".into(),
                    ));
                };
                if *n != number || *t != total || buf.len() != offset || offset + part.len() > total
                {
                    self.partial = None;
                    return Err(Error::Malformed(
                        "chunks out of order or inconsistent".into(),
                    ));
                }
                buf.extend_from_slice(part);
                if buf.len() < total {
                    return Ok(None);
                }
                let (_, _, body) = self.partial.take().expect("checked above");
                self.codec.decode_body(&body).map(Some)
            }
            other => Err(Error::UnknownKind(other)),
        }
    }
}
