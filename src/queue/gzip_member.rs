//! One gzip member stitched from stored deflate pieces, without recompressing them (as pigz
//! appends). Every stored piece is raw deflate ending in a sync flush, so it ends on a byte
//! boundary and the pieces of one segment decode in order; segments start a fresh stream, and
//! a fresh stream may follow any byte-aligned point. The member is a 10-byte header, the
//! pieces, an empty final fixed-Huffman block, then the CRC-32 of the text (combined from the
//! pieces' CRCs without the text) and its length mod 2^32, little-endian. One member, because
//! a single-member reader silently stops after the first.

/// A gzip header: magic, deflate, no flags, no time, no extra flags, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];
/// A final, empty block with fixed Huffman codes (BFINAL=1, BTYPE=01, end-of-block), padded.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Builds one gzip member from stored pieces.
pub struct GzipMember {
    body: Vec<u8>,
    crc: crc32fast::Hasher,
    raw_len: u64,
}

impl GzipMember {
    pub fn with_capacity(bytes: usize) -> GzipMember {
        let mut body = Vec::with_capacity(bytes + HEADER.len() + 10);
        body.extend_from_slice(&HEADER);
        GzipMember {
            body,
            crc: crc32fast::Hasher::new(),
            raw_len: 0,
        }
    }

    /// Append a stored piece: sync-flushed raw deflate whose text has CRC-32 `crc` and
    /// `raw_len` bytes.
    pub fn push(&mut self, deflate: &[u8], crc: u32, raw_len: u64) {
        self.body.extend_from_slice(deflate);
        self.crc
            .combine(&crc32fast::Hasher::new_with_initial_len(crc, raw_len));
        self.raw_len += raw_len;
    }

    /// Bytes of text the member decodes to.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// The finished member.
    pub fn finish(mut self) -> Vec<u8> {
        self.body.extend_from_slice(&FINAL_BLOCK);
        self.body
            .extend_from_slice(&self.crc.finalize().to_le_bytes());
        // The gzip trailer keeps the length modulo 2^32 by definition.
        self.body
            .extend_from_slice(&((self.raw_len & 0xffff_ffff) as u32).to_le_bytes());
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::segment::PieceCompressor;
    use std::io::Read;

    /// Read exactly one gzip member and fail if any byte is left after it.
    pub(crate) fn read_single_member(body: &[u8]) -> Vec<u8> {
        let mut decoder = flate2::bufread::GzDecoder::new(body);
        let mut text = Vec::new();
        decoder.read_to_end(&mut text).expect("a valid gzip member");
        let rest = decoder.into_inner();
        assert!(
            rest.is_empty(),
            "{} bytes after the first member",
            rest.len()
        );
        text
    }

    fn pieces_of(texts: &[&[u8]], level: u32) -> Vec<(Vec<u8>, u32, u64)> {
        let mut compressor = PieceCompressor::new(level);
        texts
            .iter()
            .map(|t| {
                let data = compressor.compress(t).unwrap();
                (data, crc32fast::hash(t), t.len() as u64)
            })
            .collect()
    }

    #[test]
    fn pieces_of_one_stream_and_of_fresh_streams_stitch_into_one_member() {
        let a: &[u8] = b"m,t=a v=1 1\nm,t=a v=2 2\n";
        let b: &[u8] = b"m,t=a v=3 3\n";
        let c: &[u8] = b"other,t=b v=\"x\" 4\n";
        let mut member = GzipMember::with_capacity(0);
        for (data, crc, len) in pieces_of(&[a, b], 9).into_iter().chain(pieces_of(&[c], 6)) {
            member.push(&data, crc, len);
        }
        assert_eq!(member.raw_len(), (a.len() + b.len() + c.len()) as u64);
        let body = member.finish();
        assert_eq!(read_single_member(&body), [a, b, c].concat());
    }

    #[test]
    fn the_trailer_holds_the_combined_crc_and_the_length() {
        let texts: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("m v={i}i {i}\n").repeat(100 * i + 1).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
        let mut member = GzipMember::with_capacity(0);
        for (data, crc, len) in pieces_of(&refs, 9) {
            member.push(&data, crc, len);
        }
        let body = member.finish();
        let all = texts.concat();
        let trailer = &body[body.len() - 8..];
        assert_eq!(trailer[..4], crc32fast::hash(&all).to_le_bytes());
        assert_eq!(trailer[4..], (all.len() as u32).to_le_bytes());
        assert_eq!(body[body.len() - 10..body.len() - 8], FINAL_BLOCK);
        assert_eq!(read_single_member(&body), all);
    }

    #[test]
    fn an_empty_member_is_valid_and_decodes_to_nothing() {
        assert!(read_single_member(&GzipMember::with_capacity(0).finish()).is_empty());
    }

    #[test]
    fn a_corrupted_crc_is_caught_by_the_reader() {
        let mut member = GzipMember::with_capacity(0);
        for (data, crc, len) in pieces_of(&[b"m v=1 1\n"], 9) {
            member.push(&data, crc ^ 1, len);
        }
        let body = member.finish();
        let mut text = Vec::new();
        let read = flate2::bufread::GzDecoder::new(&body[..]).read_to_end(&mut text);
        assert!(read.is_err(), "a wrong CRC must not pass");
    }
}
