//! The plugin's log lines, captured while a check runs (the `log-secrets` property reads them).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Plugin log lines, captured while the check runs on this thread.
#[derive(Clone, Default)]
pub(super) struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything logged so far.
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn log_subscriber(logs: &LogBuffer) -> impl tracing::Subscriber + Send + Sync + use<> {
    let logs = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("plugin=trace"))
        .with_ansi(false)
        .with_writer(move || logs.clone())
        .finish()
}
