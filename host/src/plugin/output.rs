//! A plugin's stdout and stderr, captured into one bounded buffer per call
//! that ends up in Wicket's log.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of a plugin's stdout/stderr is kept per request; the rest is
/// counted and dropped, so a chatty plugin cannot grow the host's memory.
pub const OUTPUT_CAPTURE_BYTES: usize = 16 * 1024;

/// A plugin's stdout and stderr: the first [`OUTPUT_CAPTURE_BYTES`] are kept,
/// the rest counted and dropped. Writes never fail, so a plugin's own
/// `eprintln!` cannot turn a full buffer into a panic.
#[derive(Clone, Default)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: usize,
}

impl CapturedOutput {
    fn append(&self, bytes: &[u8]) {
        let mut captured = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let room = OUTPUT_CAPTURE_BYTES.saturating_sub(captured.kept.len());
        let keep = room.min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..keep]);
        captured.dropped += bytes.len() - keep;
    }

    /// The message of a Rust panic in the output, if the plugin panicked:
    /// the line after `panicked at FILE:LINE:COL:`.
    pub fn panic_message(&self) -> Option<String> {
        let captured = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let text = String::from_utf8_lossy(&captured.kept);
        let (_, after) = text.split_once("panicked at ")?;
        after.lines().nth(1).map(str::to_owned)
    }

    /// What was kept, as text, and how many bytes were dropped.
    pub fn take(&self) -> (String, usize) {
        let mut captured = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let text = String::from_utf8_lossy(&captured.kept).into_owned();
        let dropped = captured.dropped;
        *captured = Captured::default();
        (text, dropped)
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_output_keeps_a_bounded_prefix() {
        let output = CapturedOutput::default();
        output.append(b"hello ");
        output.append(&vec![b'x'; OUTPUT_CAPTURE_BYTES]);
        let (text, dropped) = output.take();
        assert_eq!(text.len(), OUTPUT_CAPTURE_BYTES);
        assert!(text.starts_with("hello xx"));
        assert_eq!(dropped, 6);
    }
}
