//! `run.max_memory` on Wasmer: tunables that cap the maximum of every memory an instance
//! creates (its own and the shared one a WASIX program imports), so that `memory.grow` past the
//! limit fails as it does on wasmtime. How memories are laid out (their style, which compiled
//! code depends on) is left to Wasmer's defaults, so artifacts do not depend on the limit.

use std::ptr::NonNull;

use wasmer::sys::vm::{
    MemoryError, MemoryStyle, TableStyle, VMMemory, VMMemoryDefinition, VMTable, VMTableDefinition,
};
use wasmer::sys::{BaseTunables, Tunables};
use wasmer::{MemoryType, Pages, TableType, WASM_PAGE_SIZE};

/// Wasmer's default tunables with a ceiling on memory size.
pub(super) struct Limited {
    base: BaseTunables,
    max_pages: Pages,
}

impl Limited {
    pub(super) fn new(max_bytes: u64) -> Limited {
        let pages = (max_bytes / WASM_PAGE_SIZE as u64).min(u64::from(u32::MAX));
        Limited {
            base: BaseTunables::new(),
            max_pages: Pages(pages as u32),
        }
    }

    fn limit(&self, ty: &MemoryType) -> MemoryType {
        let maximum = ty.maximum.map_or(self.max_pages, |m| m.min(self.max_pages));
        MemoryType {
            maximum: Some(maximum),
            ..*ty
        }
    }
}

impl Tunables for Limited {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        self.base.memory_style(memory)
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
    ) -> Result<VMMemory, MemoryError> {
        self.base.create_host_memory(&self.limit(ty), style)
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        // SAFETY: the caller's guarantee for `vm_definition_location`, passed on unchanged.
        unsafe {
            self.base
                .create_vm_memory(&self.limit(ty), style, vm_definition_location)
        }
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(ty, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        // SAFETY: as above.
        unsafe { self.base.create_vm_table(ty, style, vm_definition_location) }
    }
}
