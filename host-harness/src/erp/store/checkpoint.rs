//! The WAL checkpointer: a background thread that checkpoints what a sync commits, so the
//! writer never waits for it.

use std::path::Path;

use super::connection::open_conn;

/// A background checkpoint is asked for after about this much committed line data.
const CHECKPOINT_EVERY_BYTES: usize = 16 * 1024 * 1024;

/// Counts what is committed and asks the checkpointer (started on first need) to run once
/// enough has been.
#[derive(Default)]
pub(super) struct Checkpoints {
    /// Checkpoints the WAL off the sync's thread; started by the first batch.
    checkpointer: Option<Checkpointer>,
    /// Bytes (estimated) committed since the last checkpoint was asked for.
    uncheckpointed: usize,
}

impl Checkpoints {
    /// Note `bytes` (estimated) committed; asks for a checkpoint every CHECKPOINT_EVERY_BYTES.
    pub(super) fn committed(&mut self, path: &Path, bytes: usize) {
        self.uncheckpointed += bytes;
        if self.uncheckpointed < CHECKPOINT_EVERY_BYTES {
            return;
        }
        self.uncheckpointed = 0;
        if self.checkpointer.is_none() {
            self.checkpointer = Checkpointer::start(path);
        }
        if let Some(c) = &self.checkpointer {
            c.ask();
        }
    }
}

/// A thread with its own connection that runs PASSIVE checkpoints when asked, so the writer
/// never waits for a checkpoint's fsyncs. Safe to lose at any instant: a checkpoint only copies
/// committed pages from the WAL into the database file, and SQLite redoes it after a crash.
struct Checkpointer {
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Option<Self> {
        let conn = open_conn(path, false).ok()?;
        // One pending request is enough: a checkpoint catches up with everything committed.
        let (wake, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("erp-checkpoint".into())
            .spawn(move || {
                while asked.recv().is_ok() {
                    // Best effort: a busy or failed checkpoint is retried by the next request,
                    // and the writer's automatic checkpoint bounds the WAL meanwhile.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        Some(Self {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    fn ask(&self) {
        if let Some(w) = &self.wake {
            // Full means a checkpoint is already asked for.
            let _ = w.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
