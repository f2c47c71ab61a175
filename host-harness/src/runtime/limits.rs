//! Memory limits of one Store: wasmtime's `StoreLimits`, plus a note of why a grow failed so the
//! caller gets a typed "memory limit" error instead of a bare trap.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

pub struct Limiter {
    inner: StoreLimits,
    max_memory: usize,
    /// Set when the guest asked for more memory than allowed.
    pub(crate) exceeded: bool,
    /// Largest linear memory the guest reached, in bytes.
    pub(crate) peak_memory: usize,
}

impl Limiter {
    pub fn new(max_memory: usize) -> Self {
        let inner = StoreLimitsBuilder::new()
            .memory_size(max_memory)
            .instances(16)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        Self {
            inner,
            max_memory,
            exceeded: false,
            peak_memory: 0,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.exceeded = true;
        } else {
            self.peak_memory = self.peak_memory.max(desired);
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
