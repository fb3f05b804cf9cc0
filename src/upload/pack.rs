//! Packing a batch for the wire. Lines are rendered from SQLite straight into the gzip stream,
//! so the plain text of a megabyte batch never sits in memory (the Pi has 512 MB and shares
//! it); only the compressed body does. A batch the server does not simply accept is re-read
//! as plain lines (`Queue::batch_between`) to be split or bisected.

use crate::line_protocol;
use crate::queue::{Batch, LineSink, Queue, QueueError, Run};
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender};

/// A batch as sent: the run of queue rows or pieces it holds and its request body.
#[derive(Debug)]
pub struct Packed {
    /// First and last id: a run of consecutive rows, or of pieces of whole segments.
    pub run: Run,
    pub lines: usize,
    /// Uncompressed size, newlines included: what the server's size limits apply to.
    pub plain_len: usize,
    pub body: Vec<u8>,
}

/// Whole segments after piece `after` (from the oldest when `None`), up to the batch bounds,
/// ready to send: stored pieces stitched into one gzip member, nothing compressed now. A
/// segment larger than the bounds (the server taught us a smaller size) is taken apart into
/// rows and packed from those.
pub fn pack_segments(
    queue: &mut Queue,
    after: Option<i64>,
    max_lines: usize,
    max_bytes: usize,
    gzip: bool,
) -> Result<Option<Packed>, QueueError> {
    let segments = loop {
        let Some(segments) = queue.next_segments(after, max_lines, max_bytes)? else {
            return Ok(None);
        };
        let (first, last) = segments.run;
        if segments.lines <= max_lines && segments.raw_len <= max_bytes {
            break segments;
        }
        // Gone meanwhile (retention removed it): the next segment is taken instead, so a
        // drain does not stop as if nothing waited.
        if let Some((rows_from, _)) = queue.unpack(first, last)? {
            return pack(queue, Some(rows_from - 1), max_lines, max_bytes, gzip);
        }
    };
    let (first, last) = segments.run;
    let body = if gzip {
        segments.gzip
    } else {
        segments
            .text()
            .map_err(|source| queue.undecodable(source))?
    };
    Ok(Some(Packed {
        run: Run::Pieces(first, last),
        lines: segments.lines,
        plain_len: segments.raw_len,
        body,
    }))
}

/// The rows after `after` (all when `None`), up to the batch bounds, ready to send.
pub fn pack(
    queue: &mut Queue,
    after: Option<i64>,
    max_lines: usize,
    max_bytes: usize,
    gzip: bool,
) -> Result<Option<Packed>, QueueError> {
    if !gzip {
        let batch = queue.render_after(after, max_lines, max_bytes, Batch::default())?;
        let Some((first, last)) = batch.run() else {
            return Ok(None);
        };
        let run = Run::Rows(first, last);
        let (lines, plain_len) = (batch.len(), batch.body_len());
        return Ok(Some(Packed {
            run,
            lines,
            plain_len,
            body: batch.into_body(),
        }));
    }
    // Render on this thread and compress on another, through two buffers that take turns:
    // reading SQLite and gzip overlap, memory stays at two buffers whatever the batch size,
    // and the threads hand over once per 64 KiB (each hand-over wakes a thread, which is
    // not free on a small board).
    let (to_compressor, filled) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
    let (to_renderer, emptied) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
    // Cannot fail: the channel is empty and has room for one.
    let _ = to_renderer.send(Vec::with_capacity(BUFFER_BYTES + LINE_SLACK));
    std::thread::scope(|scope| {
        let compressing = scope.spawn(move || {
            let mut encoder = GzEncoder::new(
                Vec::with_capacity(16 * 1024),
                Compression::new(super::GZIP_LEVEL),
            );
            for mut buffer in filled {
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(&buffer);
                buffer.clear();
                // The renderer may be gone already when this was the last buffer.
                let _ = to_renderer.send(buffer);
            }
            encoder.finish().unwrap_or_default()
        });
        let sink = BufferSink::new(to_compressor, emptied);
        // Dropping the sink (its sender) ends the compressor's input.
        let mut sink = queue.render_after(after, max_lines, max_bytes, sink)?;
        sink.hand_over();
        let (run, lines, plain_len) = (sink.run, sink.lines, sink.plain_len);
        drop(sink);
        let body = compressing.join().unwrap_or_default();
        Ok(run.map(|(first, last)| Packed {
            run: Run::Rows(first, last),
            lines,
            plain_len,
            body,
        }))
    })
}

/// Size at which a buffer of rendered lines goes to the compressor.
const BUFFER_BYTES: usize = 64 * 1024;
/// Room for the line that crosses `BUFFER_BYTES`, so the buffer does not grow.
const LINE_SLACK: usize = 1024;

/// Renders lines into one buffer while the compressor works on the other.
struct BufferSink {
    to_compressor: SyncSender<Vec<u8>>,
    emptied: Receiver<Vec<u8>>,
    buffer: Vec<u8>,
    run: Option<(i64, i64)>,
    lines: usize,
    plain_len: usize,
}

impl BufferSink {
    fn new(to_compressor: SyncSender<Vec<u8>>, emptied: Receiver<Vec<u8>>) -> BufferSink {
        BufferSink {
            to_compressor,
            emptied,
            buffer: Vec::with_capacity(BUFFER_BYTES + LINE_SLACK),
            run: None,
            lines: 0,
            plain_len: 0,
        }
    }

    /// Send the filled buffer to the compressor and take the one it has finished with.
    fn hand_over(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        // Send first: the buffer waits in the channel while the compressor finishes the other
        // one, which it then finds without waiting. The compressor only stops when this sink
        // is dropped and gives every buffer back; should it have died, a fresh buffer keeps
        // this side going to the end of the batch.
        let full = std::mem::take(&mut self.buffer);
        let _ = self.to_compressor.send(full);
        self.buffer = self.emptied.recv().unwrap_or_default();
    }
}

impl LineSink for BufferSink {
    fn push(&mut self, id: i64, series_key: &str, fields: &str, time_ns: i64) {
        let start = self.buffer.len();
        if self.lines > 0 {
            self.buffer.push(b'\n');
        }
        line_protocol::push_line(&mut self.buffer, series_key, fields, time_ns);
        self.plain_len += self.buffer.len() - start;
        self.lines += 1;
        self.run = Some((self.run.map_or(id, |(first, _)| first), id));
        if self.buffer.len() >= BUFFER_BYTES {
            self.hand_over();
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
    use crate::queue::{Class, NewReading};
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
                class: Class::Routine,
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
            (Run::Rows(1, 30), 30, plain.body_len())
        );
        let rest = pack(&mut q, Some(packed.run.last()), 30, 1 << 20, false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (rest.lines, rest.body.starts_with(b"m,t=a v=30i 30")),
            (20, true)
        );
        assert!(pack(&mut q, Some(rest.run.last()), 30, 1 << 20, true)
            .unwrap()
            .is_none());
    }
}
