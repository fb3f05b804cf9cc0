//! Packing a batch for the wire. Lines are rendered from SQLite straight into the gzip stream,
//! so the plain text of a megabyte batch never sits in memory (the Pi has 512 MB and shares
//! it); only the compressed body does. A batch the server does not simply accept is re-read
//! as plain lines (`Queue::batch_between`) to be split or bisected.

use crate::line_protocol;
use crate::queue::{Batch, LineSink, Queue, QueueError};
use flate2::{write::GzEncoder, Compression};
use std::io::Write;

/// A batch as sent: the run of queue rows it holds and its request body.
#[derive(Debug)]
pub struct Packed {
    /// First and last queue id: a run of consecutive rows.
    pub run: (i64, i64),
    pub lines: usize,
    /// Uncompressed size, newlines included: what the server's size limits apply to.
    pub plain_len: usize,
    pub body: Vec<u8>,
}

/// The readings after `after` (all when `None`), up to the batch bounds, ready to send.
pub fn pack(
    queue: &mut Queue,
    after: Option<i64>,
    max_lines: usize,
    max_bytes: usize,
    gzip: bool,
) -> Result<Option<Packed>, QueueError> {
    if !gzip {
        let batch = queue.render_after(after, max_lines, max_bytes, Batch::default())?;
        let Some(run) = batch.run() else {
            return Ok(None);
        };
        let (lines, plain_len) = (batch.len(), batch.body_len());
        return Ok(Some(Packed {
            run,
            lines,
            plain_len,
            body: batch.into_body(),
        }));
    }
    // Render on this thread and compress on another, two 32 KiB chunks apart: reading
    // SQLite and gzip then overlap, and memory stays at a few chunks whatever the batch size.
    let (chunks, compressor_in) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        let compressing = scope.spawn(move || {
            let mut encoder = GzEncoder::new(Vec::with_capacity(16 * 1024), Compression::default());
            for chunk in compressor_in {
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(&chunk);
            }
            encoder.finish().unwrap_or_default()
        });
        let sink = queue.render_after(after, max_lines, max_bytes, ChunkSink::new(chunks));
        // Dropping the sink (its sender) ends the compressor's input.
        let mut sink = sink?;
        sink.send_chunk();
        let (run, lines, plain_len) = (sink.run, sink.lines, sink.plain_len);
        drop(sink);
        let body = compressing.join().unwrap_or_default();
        Ok(run.map(|run| Packed {
            run,
            lines,
            plain_len,
            body,
        }))
    })
}

/// Chunks handed to the compressor before rendering waits for it.
const CHUNKS_IN_FLIGHT: usize = 2;
const CHUNK_BYTES: usize = 32 * 1024;

/// Renders lines into chunks and hands each full chunk to the compressor thread.
struct ChunkSink {
    to_compressor: std::sync::mpsc::SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    run: Option<(i64, i64)>,
    lines: usize,
    plain_len: usize,
}

impl ChunkSink {
    fn new(to_compressor: std::sync::mpsc::SyncSender<Vec<u8>>) -> ChunkSink {
        ChunkSink {
            to_compressor,
            chunk: Vec::with_capacity(CHUNK_BYTES + 1024),
            run: None,
            lines: 0,
            plain_len: 0,
        }
    }

    fn send_chunk(&mut self) {
        if !self.chunk.is_empty() {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES + 1024));
            // The compressor only stops when this sink is dropped.
            let _ = self.to_compressor.send(full);
        }
    }
}

impl LineSink for ChunkSink {
    fn push(&mut self, id: i64, series_key: &str, fields: &str, time_ns: i64) {
        let start = self.chunk.len();
        if self.lines > 0 {
            self.chunk.push(b'\n');
        }
        line_protocol::push_line(&mut self.chunk, series_key, fields, time_ns);
        self.plain_len += self.chunk.len() - start;
        self.lines += 1;
        self.run = Some((self.run.map_or(id, |(first, _)| first), id));
        if self.chunk.len() >= CHUNK_BYTES {
            self.send_chunk();
        }
    }

    fn lines(&self) -> usize {
        self.lines
    }

    fn plain_len(&self) -> usize {
        self.plain_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::NewReading;
    use std::io::Read;

    #[test]
    fn a_packed_batch_is_the_gzip_of_the_plain_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.db")).unwrap();
        let s = q.series_id("m,t=a").unwrap();
        let rows: Vec<NewReading> = (0..50)
            .map(|t| NewReading {
                series: s,
                time_ns: t,
                fields: format!("v={t}i"),
                event: false,
            })
            .collect();
        q.push(&rows, &[], &[]).unwrap();
        let plain = q.next_batch(30, 1 << 20).unwrap().unwrap();
        let packed = pack(&mut q, None, 30, 1 << 20, true).unwrap().unwrap();
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&packed.body[..])
            .read_to_end(&mut text)
            .unwrap();
        assert_eq!(text, plain.body());
        assert_eq!(
            (packed.run, packed.lines, packed.plain_len),
            (plain.run().unwrap(), 30, plain.body_len())
        );
        let rest = pack(&mut q, Some(packed.run.1), 30, 1 << 20, false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (rest.lines, rest.body.starts_with(b"m,t=a v=30i 30")),
            (20, true)
        );
        assert!(pack(&mut q, Some(rest.run.1), 30, 1 << 20, true)
            .unwrap()
            .is_none());
    }
}
