//! Compressed segments: routine readings are stored as line protocol already compressed. Each
//! commit appends its lines to the open segment's raw deflate stream and ends with a sync
//! flush, so every stored piece ends on a byte boundary (`00 00 ff ff`), is durable on its
//! own, and the pieces of a segment decode in order. A segment closes at a size and is never
//! rewritten: a batch sends whole segments as they are (see `gzip_member`), and acknowledging
//! one deletes a range of piece rows. Compression happens while sampling, when the CPU is
//! idle, so it uses level 9; the drain then costs almost nothing.

use flate2::{Compress, Compression, FlushCompress};

/// Compression level while sampling: the CPU is idle then, and every byte saved is saved on
/// the SD card and again on the wire. (flate2's zlib-rs backend, whose level 9 is zlib's.)
pub const LEVEL: u32 = 9;
/// A segment closes once it holds this much line protocol or this many lines: a fresh stream
/// costs a little compression, so segments are large, yet two fit a default batch (1 MiB,
/// 5,000 lines) with room for the piece that crosses the mark.
pub const SEGMENT_RAW_BYTES: u64 = 480 * 1024;
pub const SEGMENT_LINES: u64 = 2_500;

/// Where segments close. A batch sends whole segments, and a segment larger than the batch
/// size must be taken apart into rows to be sent, so with smaller batches than the default
/// segments close at half a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentBounds {
    pub lines: u64,
    pub raw_bytes: u64,
}

impl Default for SegmentBounds {
    fn default() -> Self {
        SegmentBounds {
            lines: SEGMENT_LINES,
            raw_bytes: SEGMENT_RAW_BYTES,
        }
    }
}

impl SegmentBounds {
    /// Bounds under which two segments fit a batch of `batch_lines` lines and `batch_bytes`
    /// bytes of line protocol, never above the defaults.
    pub fn for_batches(batch_lines: usize, batch_bytes: u64) -> SegmentBounds {
        let default = SegmentBounds::default();
        SegmentBounds {
            lines: (batch_lines as u64 / 2).clamp(1, default.lines),
            // Room for the line that crosses the mark (a line is far below 8 KiB).
            raw_bytes: (batch_bytes / 2)
                .saturating_sub(8 * 1024)
                .clamp(1, default.raw_bytes),
        }
    }
}

/// The open end of one segment's deflate stream.
pub struct PieceCompressor {
    stream: Compress,
}

impl PieceCompressor {
    pub fn new(level: u32) -> PieceCompressor {
        PieceCompressor {
            stream: Compress::new(Compression::new(level), false),
        }
    }

    /// Compress `text` as the next piece of this stream, ending on a byte boundary. zlib
    /// finishes a sync flush once it returns with output room to spare.
    pub fn compress(&mut self, text: &[u8]) -> Result<Vec<u8>, flate2::CompressError> {
        let mut out = Vec::with_capacity(text.len() / 4 + 64);
        let start = self.stream.total_in();
        loop {
            let consumed = (self.stream.total_in() - start) as usize;
            self.stream
                .compress_vec(&text[consumed..], &mut out, FlushCompress::Sync)?;
            let all_in = (self.stream.total_in() - start) as usize == text.len();
            if all_in && out.len() < out.capacity() {
                return Ok(out);
            }
            out.reserve(out.capacity().max(256));
        }
    }
}

/// What the queue keeps about one stored piece besides its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub data: Vec<u8>,
    pub crc: u32,
    pub raw_len: u64,
    pub lines: u64,
    pub oldest_ns: i64,
    pub newest_ns: i64,
}

/// The recorder's side of the open segment: its stream and how full it is.
pub struct OpenSegment {
    compressor: PieceCompressor,
    bounds: SegmentBounds,
    /// Row id of the segment's first piece, once stored.
    pub first_id: Option<i64>,
    /// Row id of its newest piece.
    pub last_id: Option<i64>,
    raw_len: u64,
    lines: u64,
}

impl Default for OpenSegment {
    fn default() -> Self {
        OpenSegment::new(SegmentBounds::default())
    }
}

impl OpenSegment {
    pub fn new(bounds: SegmentBounds) -> OpenSegment {
        OpenSegment {
            compressor: PieceCompressor::new(LEVEL),
            bounds,
            first_id: None,
            last_id: None,
            raw_len: 0,
            lines: 0,
        }
    }

    /// Whether the segment has reached its size and the next piece should start another.
    pub fn is_full(&self) -> bool {
        self.raw_len >= self.bounds.raw_bytes || self.lines >= self.bounds.lines
    }

    /// How many more lines and bytes of line protocol the segment takes before it is full.
    pub fn room(&self) -> (u64, u64) {
        (
            self.bounds.lines.saturating_sub(self.lines),
            self.bounds.raw_bytes.saturating_sub(self.raw_len),
        )
    }

    /// Compress one commit's text (lines each ending in `\n`) as the next piece.
    pub fn append(
        &mut self,
        text: &[u8],
        lines: u64,
        oldest_ns: i64,
        newest_ns: i64,
    ) -> Result<Piece, flate2::CompressError> {
        self.raw_len += text.len() as u64;
        self.lines += lines;
        Ok(Piece {
            data: self.compressor.compress(text)?,
            crc: crc32fast::hash(text),
            raw_len: text.len() as u64,
            lines,
            oldest_ns,
            newest_ns,
        })
    }
}

/// Decode the pieces of one segment, in order, back to their text.
pub fn decode(pieces: &[Vec<u8>]) -> Result<Vec<u8>, std::io::Error> {
    let mut stream = flate2::Decompress::new(false);
    let mut buffer = vec![0; CHUNK];
    let mut text = Vec::new();
    for piece in pieces {
        inflate_piece(&mut stream, piece, &mut buffer, |chunk| {
            text.extend_from_slice(chunk)
        })?;
    }
    Ok(text)
}

/// Gathers pieces read in id order into their segments: a piece marked `first` starts one.
pub struct SegmentRuns<T> {
    current: Vec<T>,
}

impl<T> Default for SegmentRuns<T> {
    fn default() -> Self {
        SegmentRuns {
            current: Vec::new(),
        }
    }
}

impl<T> SegmentRuns<T> {
    /// Add the next piece; returns the segment before it when it starts a new one.
    pub fn push(&mut self, first: bool, piece: T) -> Option<Vec<T>> {
        let closed = (first && !self.current.is_empty()).then(|| std::mem::take(&mut self.current));
        self.current.push(piece);
        closed
    }

    /// The last segment, once every piece is in.
    pub fn finish(self) -> Option<Vec<T>> {
        (!self.current.is_empty()).then_some(self.current)
    }
}

/// A stored piece with what the queue knows about its text.
pub struct StoredPiece {
    pub data: Vec<u8>,
    pub crc: u32,
    pub lines: u64,
}

/// What could be read of a segment: the text of every piece up to the first that does not
/// decode or whose text does not match its CRC-32, and why reading stopped there.
pub struct Salvaged {
    pub text: Vec<u8>,
    pub lost_lines: u64,
    pub damage: Option<String>,
}

/// Decode a segment's pieces, checking each one's CRC-32, and keep what is sound: a damaged
/// piece and every later one (which needs it to decode) are lost, and counted.
pub fn salvage(pieces: &[StoredPiece]) -> Salvaged {
    let mut text = Vec::new();
    // Where the text of the piece being read starts: a damaged piece's text is dropped.
    let mut piece_start = (0, 0);
    let damage = read_checked(
        pieces.iter().map(|p| (&p.data[..], p.crc)),
        |piece, chunk| {
            if piece != piece_start.0 {
                piece_start = (piece, text.len());
            }
            text.extend_from_slice(chunk)
        },
    );
    match damage {
        Some(damage) => {
            if piece_start.0 == damage.piece {
                text.truncate(piece_start.1);
            }
            Salvaged {
                text,
                lost_lines: pieces[damage.piece..].iter().map(|p| p.lines).sum(),
                damage: Some(damage.why),
            }
        }
        None => Salvaged {
            text,
            lost_lines: 0,
            damage: None,
        },
    }
}

/// Where a segment stops being sound: the first piece that does not decode or whose text
/// does not match its CRC-32 (bytes garbled on the card, or a piece lost before it), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    pub piece: usize,
    pub why: String,
}

/// Check that a segment's pieces (data, CRC-32 of their text) decode to their CRCs, without
/// keeping the text: what the uploader does before it sends stored bytes. It reads through a
/// small buffer, so a large piece costs no memory.
pub fn first_damage<'p>(pieces: impl Iterator<Item = (&'p [u8], u32)>) -> Option<Damage> {
    read_checked(pieces, |_, _| {})
}

/// Bytes of text inflated at a time.
const CHUNK: usize = 16 * 1024;

/// Decode pieces in order, handing their text to `text` chunk by chunk with the piece's
/// index, and check each piece's CRC-32; stop at the first piece that is not sound (whose
/// chunks `text` may already have had).
fn read_checked<'p>(
    pieces: impl Iterator<Item = (&'p [u8], u32)>,
    mut text: impl FnMut(usize, &[u8]),
) -> Option<Damage> {
    let mut stream = flate2::Decompress::new(false);
    let mut buffer = vec![0; CHUNK];
    for (i, (data, crc)) in pieces.enumerate() {
        let mut hasher = crc32fast::Hasher::new();
        let inflated = inflate_piece(&mut stream, data, &mut buffer, |chunk| {
            hasher.update(chunk);
            text(i, chunk);
        });
        let why = match inflated {
            Err(e) => e.to_string(),
            Ok(()) if hasher.finalize() != crc => "the text does not match its CRC-32".to_string(),
            Ok(()) => continue,
        };
        return Some(Damage { piece: i, why });
    }
    None
}

/// A stored segment that does not decode: SQLite's own word for a damaged file, so the
/// queue's corruption handling (set the file aside, salvage it) applies.
pub fn corrupt(cause: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        Some(format!("a stored segment does not decode: {cause}")),
    )
}

/// Decode one sync-flushed piece of `stream` through `buffer`, handing the text to `out`.
fn inflate_piece(
    stream: &mut flate2::Decompress,
    piece: &[u8],
    buffer: &mut [u8],
    mut out: impl FnMut(&[u8]),
) -> Result<(), std::io::Error> {
    let mut offset = 0;
    loop {
        let (in_before, out_before) = (stream.total_in(), stream.total_out());
        stream
            .decompress(&piece[offset..], buffer, flate2::FlushDecompress::Sync)
            .map_err(std::io::Error::other)?;
        offset += (stream.total_in() - in_before) as usize;
        let produced = (stream.total_out() - out_before) as usize;
        out(&buffer[..produced]);
        // Done once all of the piece is in and the output did not fill the buffer.
        if offset >= piece.len() && produced < buffer.len() {
            return Ok(());
        }
        if stream.total_in() == in_before && produced == 0 {
            return Err(std::io::Error::other("a stored piece ends in the middle"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_larger_than_the_inflate_buffer_are_checked_and_salvaged_whole() {
        let mut segment = OpenSegment::default();
        let texts: Vec<String> = (0..3)
            .map(|p| {
                (0..4000)
                    .map(|i| format!("m,t=a v={}i {}\n", i * 7 + p, p * 4000 + i))
                    .collect()
            })
            .collect();
        assert!(texts[0].len() > 4 * CHUNK);
        let mut stored: Vec<StoredPiece> = texts
            .iter()
            .map(|t| {
                let piece = segment.append(t.as_bytes(), 4000, 0, 0).unwrap();
                StoredPiece {
                    data: piece.data,
                    crc: piece.crc,
                    lines: 4000,
                }
            })
            .collect();
        let pieces = || stored.iter().map(|p| (&p.data[..], p.crc));
        assert_eq!(first_damage(pieces()), None);
        stored[2].crc ^= 1;
        let damage = first_damage(stored.iter().map(|p| (&p.data[..], p.crc)));
        assert_eq!(damage.map(|d| d.piece), Some(2));
        let kept = salvage(&stored);
        assert_eq!(kept.text, texts[..2].concat().into_bytes());
        assert_eq!(kept.lost_lines, 4000);
    }

    #[test]
    fn every_piece_ends_with_the_empty_stored_block_of_a_sync_flush() {
        let mut segment = OpenSegment::default();
        for i in 0..20 {
            let text = format!("m,t=a v={i}i {i}\n").repeat(50);
            let piece = segment.append(text.as_bytes(), 50, i, i).unwrap();
            assert!(piece.data.ends_with(&[0, 0, 0xff, 0xff]));
            assert_eq!(piece.crc, crc32fast::hash(text.as_bytes()));
        }
    }

    #[test]
    fn the_pieces_of_a_segment_decode_in_order_to_the_text() {
        let mut segment = OpenSegment::default();
        let texts: Vec<String> = (0..30)
            .map(|i| format!("iot,sensor_id=s{} t={}.5 {i}\n", i % 3, i * 7))
            .collect();
        let pieces: Vec<Vec<u8>> = texts
            .iter()
            .map(|t| segment.append(t.as_bytes(), 1, 0, 0).unwrap().data)
            .collect();
        assert_eq!(decode(&pieces).unwrap(), texts.concat().into_bytes());
        // A prefix decodes too: what a crash leaves of an open segment.
        assert_eq!(
            decode(&pieces[..7]).unwrap(),
            texts[..7].concat().into_bytes()
        );
    }

    #[test]
    fn a_segment_is_full_at_its_size_or_line_count() {
        let mut segment = OpenSegment::default();
        segment
            .append(b"m v=1 1\n", SEGMENT_LINES - 1, 0, 0)
            .unwrap();
        assert!(!segment.is_full());
        segment.append(b"m v=1 1\n", 1, 0, 0).unwrap();
        assert!(segment.is_full());
    }

    #[test]
    fn pieces_that_expand_a_thousandfold_decode_whole() {
        let mut segment = OpenSegment::default();
        let text = "iot,sensor_id=a t=1 1\n".repeat(20_000);
        let pieces: Vec<Vec<u8>> = (0..3)
            .map(|_| segment.append(text.as_bytes(), 20_000, 0, 0).unwrap().data)
            .collect();
        assert_eq!(decode(&pieces).unwrap(), text.repeat(3).into_bytes());
    }

    #[test]
    fn a_damaged_piece_loses_itself_and_what_follows_and_keeps_what_came_before() {
        let mut segment = OpenSegment::default();
        let mut pieces: Vec<StoredPiece> = (0..4)
            .map(|i| {
                let text = format!("m v={i}i {i}\n").repeat(10);
                let piece = segment.append(text.as_bytes(), 10, i, i).unwrap();
                StoredPiece {
                    data: piece.data,
                    crc: piece.crc,
                    lines: 10,
                }
            })
            .collect();
        let sound = salvage(&pieces);
        assert_eq!((sound.lost_lines, sound.damage.is_none()), (0, true));
        pieces[2].crc ^= 1;
        let damaged = salvage(&pieces);
        assert_eq!(damaged.lost_lines, 20);
        assert_eq!(
            damaged.text,
            [0, 1]
                .map(|i| format!("m v={i}i {i}\n").repeat(10))
                .concat()
                .into_bytes()
        );
        assert!(damaged.damage.unwrap().contains("CRC"));
    }

    #[test]
    fn a_large_piece_is_compressed_whole() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("m v={}i {i}\n", i.wrapping_mul(2_654_435_761)).into_bytes())
            .collect();
        let piece = PieceCompressor::new(LEVEL).compress(&text).unwrap();
        assert_eq!(decode(&[piece]).unwrap(), text);
    }

    /// Ten-second commits of eight climate sensors at 1 Hz, as a Pi records them: a random
    /// walk per sensor, the same tags on every line of a sensor.
    fn climate_commits(commits: usize) -> Vec<String> {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |range: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % range
        };
        let mut temps = [1_850_i64; 8];
        let mut humidity = [5_000_i64; 8];
        (0..commits)
            .map(|commit| {
                let mut text = String::new();
                for second in 0..10 {
                    for (s, (t, h)) in temps.iter_mut().zip(&mut humidity).enumerate() {
                        *t += next(7) as i64 - 3;
                        *h += next(21) as i64 - 10;
                        let time = 1_796_234_496 + (commit * 10 + second) as i64;
                        text += &format!(
                            "iot_metrics,device_id=pi-cold-store-017,\
                             device_type=simulated_climate,floor={},location=warehouse-north,\
                             sensor_id=climate-0{},zone=cold-store-{} \
                             temperature={}.{:02},humidity={}.{:02},battery_level={}i,\
                             signal_strength=-{}i {time}000000000\n",
                            s / 4 + 1,
                            s + 1,
                            ['a', 'b', 'c', 'd'][s % 4],
                            *t / 100,
                            *t % 100,
                            *h / 100,
                            *h % 100,
                            95 + s,
                            55 + next(10),
                        );
                    }
                }
                text
            })
            .collect()
    }

    /// What the deflate backend is chosen for: zlib-rs stores these at 9.0 bytes a reading,
    /// miniz_oxide at 9.7 (on the benchmark's recording 10.24 against 10.84, and zlib's own
    /// level 9 at 10.24).
    #[test]
    fn climate_readings_committed_every_ten_seconds_compress_to_under_9_4_bytes_each() {
        let mut segment = OpenSegment::default();
        let mut stored = 0;
        let commits = climate_commits(30);
        for text in &commits {
            stored += segment
                .append(text.as_bytes(), 80, 0, 0)
                .unwrap()
                .data
                .len();
        }
        let per_reading = stored as f64 / (commits.len() * 80) as f64;
        assert!(per_reading < 9.4, "{per_reading:.2} bytes per reading");
    }
}
