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
    use crate::queue::segment::{decode, PieceCompressor, LEVEL};
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

    /// Three pieces of one segment as the previous release stored them (its deflate backend was
    /// miniz_oxide, at level 9), with the text each decodes to.
    const PREVIOUS_RELEASE_PIECES: [(&[u8], &str); 3] = [
        (
            &[
                0x5c, 0xc9, 0xb1, 0x09, 0x00, 0x21, 0x0c, 0x05, 0xd0, 0xde, 0x29, 0x1c, 0xe0, 0x38,
                0x7e, 0x12, 0xae, 0x74, 0x96, 0x6b, 0xb4, 0x48, 0xa3, 0x60, 0xdc, 0x1f, 0x09, 0xa4,
                0xd1, 0xfa, 0xe9, 0x58, 0x8f, 0xb5, 0x6e, 0x63, 0xfe, 0x5a, 0x8b, 0x21, 0xaf, 0xc2,
                0x78, 0xf1, 0x65, 0x02, 0x90, 0xf4, 0x54, 0x72, 0xa5, 0x50, 0xba, 0x95, 0x5d, 0x39,
                0x94, 0x6f, 0x15, 0x57, 0x09, 0x95, 0xb4, 0x01, 0x00, 0x00, 0xff, 0xff,
            ],
            "iot,sensor_id=s0 t=20.05 1000\niot,sensor_id=s1 t=21.05 1001\n\
             iot,sensor_id=s2 t=22.05 1002\niot,sensor_id=s3 t=23.05 1003\n",
        ),
        (
            &[
                0x74, 0xcd, 0x31, 0x0d, 0x00, 0x00, 0x08, 0xc4, 0xc0, 0x1d, 0x37, 0x1f, 0x54, 0xe1,
                0xdf, 0x00, 0x21, 0x5d, 0xe9, 0x7c, 0xc3, 0xcd, 0xfb, 0xe6, 0x34, 0xf6, 0xa2, 0xf6,
                0xa2, 0xf6, 0xa2, 0x5d, 0x0b, 0x00, 0x00, 0xff, 0xff,
            ],
            "iot,sensor_id=s0 t=20.15 1010\niot,sensor_id=s1 t=21.15 1011\n\
             iot,sensor_id=s2 t=22.15 1012\niot,sensor_id=s3 t=23.15 1013\n",
        ),
        (
            &[
                0x74, 0xcd, 0xa1, 0x0d, 0x00, 0x00, 0x0c, 0xc3, 0x30, 0xbe, 0x73, 0xba, 0xff, 0x7f,
                0x9b, 0xa6, 0xd0, 0x06, 0x1b, 0xb8, 0xbf, 0x79, 0x8d, 0xbd, 0xa8, 0xbd, 0xa8, 0xbd,
                0xe8, 0xce, 0x01, 0x00, 0x00, 0xff, 0xff,
            ],
            "iot,sensor_id=s0 t=20.25 1020\niot,sensor_id=s1 t=21.25 1021\n\
             iot,sensor_id=s2 t=22.25 1022\niot,sensor_id=s3 t=23.25 1023\n",
        ),
    ];

    #[test]
    fn pieces_stored_by_the_previous_release_decode_and_stitch_with_new_ones_into_one_member() {
        let old: Vec<Vec<u8>> = PREVIOUS_RELEASE_PIECES
            .iter()
            .map(|(data, _)| data.to_vec())
            .collect();
        let old_text: String = PREVIOUS_RELEASE_PIECES.iter().map(|(_, t)| *t).collect();
        assert_eq!(decode(&old).unwrap(), old_text.as_bytes());
        // Today's compressor writes other bytes for the same text: the fixture is not ours.
        let ours = pieces_of(&[PREVIOUS_RELEASE_PIECES[0].1.as_bytes()], LEVEL);
        assert_ne!(ours[0].0, PREVIOUS_RELEASE_PIECES[0].0);

        // An old segment, then segments of today's compressor, as after an upgrade.
        let new_texts: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                format!("iot,sensor_id=s{} t={i}.5 {i}\n", i % 8)
                    .repeat(80)
                    .into_bytes()
            })
            .collect();
        let mut member = GzipMember::with_capacity(0);
        for (data, text) in PREVIOUS_RELEASE_PIECES {
            member.push(data, crc32fast::hash(text.as_bytes()), text.len() as u64);
        }
        for segment in new_texts.chunks(15) {
            let refs: Vec<&[u8]> = segment.iter().map(Vec::as_slice).collect();
            for (data, crc, len) in pieces_of(&refs, LEVEL) {
                member.push(&data, crc, len);
            }
        }
        let all = [old_text.into_bytes(), new_texts.concat()].concat();
        assert_eq!(read_single_member(&member.finish()), all);
    }
}
