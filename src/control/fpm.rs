//! FPM framing: an incremental decoder over the byte stream zebra's
//! `dplane_fpm_nl` module writes to its FPM server.
//!
//! Contract:
//! - A frame is a 4-byte header — version 1, message type 1 (netlink), a
//!   16-bit big-endian total length that counts the header — followed by
//!   one or more netlink messages, each `NLMSG_ALIGN`ed (4 bytes). A frame
//!   is therefore at most 65,535 bytes.
//! - [`FrameDecoder::feed`] takes bytes as they were read (any split:
//!   partial headers, several frames per read); [`FrameDecoder::next_frame`]
//!   hands back each complete frame once. What the decoder holds is
//!   bounded: at most one incomplete frame plus one read
//!   ([`MAX_BUFFERED`]); feeding more than that without draining is an
//!   error, never a growing buffer.
//! - [`Frame::messages`] walks the netlink messages of a frame with
//!   `netlink-packet-core`'s checked buffer; a message whose length runs
//!   past the frame, or is shorter than a netlink header, is an error.
//! - Every error carries the stream offset (bytes since the connection
//!   started) of the frame or message at fault. After an error the stream
//!   cannot be resynchronised (the header has no magic): the caller resets
//!   the connection. Nothing here panics on any input.

use netlink_packet_core::NetlinkBuffer;

/// Bytes of the FPM header.
pub const HEADER_LEN: usize = 4;
/// The only FPM version.
pub const VERSION: u8 = 1;
/// FPM message type: netlink.
pub const MSG_NETLINK: u8 = 1;
/// The largest frame the 16-bit length allows.
pub const MAX_FRAME: usize = u16::MAX as usize;
/// The most bytes the decoder holds: one incomplete frame plus one read of
/// up to [`MAX_FRAME`] bytes.
pub const MAX_BUFFERED: usize = 2 * MAX_FRAME;
/// Bytes of a netlink message header.
pub const NLMSG_HDRLEN: usize = 16;

/// What went wrong, and where in the stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at stream offset {offset}: {kind}")]
pub struct FpmError {
    /// Bytes since the start of the connection to the frame or message at
    /// fault.
    pub offset: u64,
    /// What is wrong there.
    pub kind: FpmErrorKind,
}

/// The kinds of framing error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FpmErrorKind {
    /// The header's version byte is not 1.
    #[error("FPM version {0} (only version 1 exists)")]
    Version(u8),
    /// The header's message type is not netlink.
    #[error("FPM message type {0} (only 1, netlink, is understood)")]
    MessageType(u8),
    /// The header's length is shorter than a header plus a netlink header.
    #[error("FPM frame length {0} is shorter than a header and one netlink message")]
    FrameLength(u16),
    /// A netlink message's length is below 16 or runs past its frame.
    #[error("netlink message length {len} with {left} bytes left in the frame")]
    MessageLength {
        /// The length field of the message.
        len: u32,
        /// Bytes left in the frame from the message's start.
        left: usize,
    },
    /// More bytes were fed than the decoder may hold.
    #[error("more than {MAX_BUFFERED} bytes buffered: drain frames before feeding more")]
    Overflow,
}

/// One complete FPM frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Stream offset of the frame's header.
    pub offset: u64,
    /// The netlink messages (the frame without its header).
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The netlink messages of the frame, in order.
    pub fn messages(&self) -> Messages<'a> {
        Messages {
            rest: self.payload,
            offset: self.offset + HEADER_LEN as u64,
            failed: false,
        }
    }
}

/// One netlink message of a frame.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// Stream offset of the message's netlink header.
    pub offset: u64,
    /// The netlink message type (`RTM_NEWROUTE`, …).
    pub message_type: u16,
    /// The netlink flags (`NLM_F_REPLACE`, …).
    pub flags: u16,
    /// The message's payload (after the netlink header).
    pub payload: &'a [u8],
}

/// Iterator over the netlink messages of a frame; stops after the first
/// error.
#[derive(Clone, Debug)]
pub struct Messages<'a> {
    rest: &'a [u8],
    offset: u64,
    failed: bool,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, FpmError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let offset = self.offset;
        let bad = |len: u32| FpmError {
            offset,
            kind: FpmErrorKind::MessageLength {
                len,
                left: rest.len(),
            },
        };
        let checked = match NetlinkBuffer::new_checked(rest) {
            Ok(b) => b,
            Err(_) => {
                self.failed = true;
                let len = rest
                    .get(..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                return Some(Err(bad(len)));
            }
        };
        let len = checked.length() as usize;
        let message_type = checked.message_type();
        let flags = checked.flags();
        // new_checked guarantees NLMSG_HDRLEN <= len <= rest.len().
        let payload = rest.get(NLMSG_HDRLEN..len).unwrap_or(&[]);
        let step = len.saturating_add(3) & !3;
        self.rest = rest.get(step..).unwrap_or(&[]);
        self.offset += step as u64;
        Some(Ok(Message {
            offset,
            message_type,
            flags,
            payload,
        }))
    }
}

/// The incremental frame decoder of one connection.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    start: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    /// Set after an error: nothing more is decoded.
    failed: bool,
}

impl FrameDecoder {
    /// A decoder at stream offset 0.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Append bytes read from the stream. Fails (and leaves the decoder
    /// failed) when the bytes held would exceed [`MAX_BUFFERED`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), FpmError> {
        if self.failed {
            return Err(self.error(FpmErrorKind::Overflow));
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() + bytes.len() > MAX_BUFFERED {
            self.failed = true;
            return Err(self.error(FpmErrorKind::Overflow));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn error(&self, kind: FpmErrorKind) -> FpmError {
        FpmError {
            offset: self.offset,
            kind,
        }
    }

    /// The next complete frame, `None` until one is complete. After an
    /// error every call returns that error's kind again: reset the
    /// connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FpmError> {
        if self.failed {
            return Err(self.error(FpmErrorKind::Overflow));
        }
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let (version, kind) = (avail[0], avail[1]);
        let len = u16::from_be_bytes([avail[2], avail[3]]);
        let problem = if version != VERSION {
            Some(FpmErrorKind::Version(version))
        } else if kind != MSG_NETLINK {
            Some(FpmErrorKind::MessageType(kind))
        } else if (len as usize) < HEADER_LEN + NLMSG_HDRLEN {
            Some(FpmErrorKind::FrameLength(len))
        } else {
            None
        };
        if let Some(k) = problem {
            return Err(self.error(k));
        }
        let len = len as usize;
        if avail.len() < len {
            return Ok(None);
        }
        let offset = self.offset;
        let begin = self.start;
        self.start += len;
        self.offset += len as u64;
        Ok(Some(Frame {
            offset,
            payload: &self.buf[begin + HEADER_LEN..begin + len],
        }))
    }

    /// Bytes of an incomplete frame held (0 between frames).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Stream offset of the next byte to decode.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// Wrap netlink messages (already encoded, each `NLMSG_ALIGN`ed) into one
/// FPM frame, as zebra does. `None` when they do not fit in a frame.
pub fn frame(messages: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(messages.len() + HEADER_LEN).ok()?;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&[VERSION, MSG_NETLINK]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(messages);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message of `kind` with `body` bytes of payload.
    fn nlmsg(kind: u16, body: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + body.len()) as u32;
        let mut m = Vec::new();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0x100u16.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    /// Frames as (offset, [(message offset, message type)]).
    type Frames = Vec<(u64, Vec<(u64, u16)>)>;

    fn drain(d: &mut FrameDecoder) -> Result<Frames, FpmError> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame()? {
            let msgs = f
                .messages()
                .map(|m| m.map(|m| (m.offset, m.message_type)))
                .collect::<Result<Vec<_>, _>>()?;
            out.push((f.offset, msgs));
        }
        Ok(out)
    }

    #[test]
    fn every_split_gives_the_same_frames() {
        let mut two = nlmsg(25, &[1, 2, 3]);
        two.extend(nlmsg(24, &[4; 12]));
        let mut stream = frame(&nlmsg(24, &[9; 20])).unwrap();
        stream.extend(frame(&two).unwrap());
        stream.extend(frame(&nlmsg(104, &[0; 8])).unwrap());
        let mut whole = FrameDecoder::new();
        whole.feed(&stream).unwrap();
        let expect = drain(&mut whole).unwrap();
        assert_eq!(expect.len(), 3);
        assert_eq!(expect[1].1.len(), 2, "two messages in the second frame");
        assert_eq!(
            expect[1].1[1].0,
            expect[1].0 + 4 + 20,
            "offset of message 2"
        );
        for chunk in 1..=stream.len() {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                d.feed(c).unwrap();
                got.extend(drain(&mut d).unwrap());
            }
            assert_eq!(got, expect, "chunk size {chunk}");
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn garbage_and_truncation_are_located() {
        let good = frame(&nlmsg(24, &[0; 8])).unwrap();
        let mut d = FrameDecoder::new();
        let mut s = good.clone();
        s.extend_from_slice(&[2, 1, 0, 40]);
        d.feed(&s).unwrap();
        assert!(d.next_frame().unwrap().is_some());
        let e = d.next_frame().unwrap_err();
        assert_eq!(e.offset, good.len() as u64);
        assert_eq!(e.kind, FpmErrorKind::Version(2));
        assert!(
            e.to_string().contains(&format!("offset {}", good.len())),
            "{e}"
        );
        // The decoder stays failed.
        assert!(d.next_frame().is_err());

        let mut d = FrameDecoder::new();
        d.feed(&[1, 2, 0, 40]).unwrap();
        assert_eq!(
            d.next_frame().unwrap_err().kind,
            FpmErrorKind::MessageType(2)
        );
        let mut d = FrameDecoder::new();
        d.feed(&[1, 1, 0, 8]).unwrap();
        assert_eq!(
            d.next_frame().unwrap_err().kind,
            FpmErrorKind::FrameLength(8)
        );

        // A netlink length running past the frame.
        let mut bad = nlmsg(24, &[0; 8]);
        bad[0..4].copy_from_slice(&200u32.to_ne_bytes());
        let f = frame(&bad).unwrap();
        let mut d = FrameDecoder::new();
        d.feed(&f).unwrap();
        let fr = d.next_frame().unwrap().unwrap();
        let e = fr.messages().find_map(Result::err).unwrap();
        assert_eq!(e.offset, 4);
        assert!(matches!(
            e.kind,
            FpmErrorKind::MessageLength { len: 200, .. }
        ));

        // A truncated frame is not a frame.
        let mut d = FrameDecoder::new();
        d.feed(&good[..good.len() - 1]).unwrap();
        assert!(d.next_frame().unwrap().is_none());
        assert_eq!(d.pending(), good.len() - 1);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut d = FrameDecoder::new();
        // A header announcing a long frame, then more than the bound.
        d.feed(&[1, 1, 0xff, 0xff]).unwrap();
        assert!(d.next_frame().unwrap().is_none());
        d.feed(&vec![0; MAX_FRAME]).unwrap();
        let e = d.feed(&vec![0; MAX_FRAME]).unwrap_err();
        assert_eq!(e.kind, FpmErrorKind::Overflow);
        assert!(frame(&vec![0; MAX_FRAME]).is_none());
    }
}
