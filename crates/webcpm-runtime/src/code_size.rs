//! How much code a module has for a compiler: the size of its code section. Custom sections
//! (debug information, names, producers) can be most of a file and cost a compiler nothing, so
//! the file's size says little about how long compiling it takes.

use wasmparser::{Parser, Payload};

/// The size in bytes of a module's code section; 0 for a module without one or bytes that do
/// not parse.
pub fn code_size(wasm: &[u8]) -> usize {
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::CodeSectionStart { size, .. }) => return size as usize,
            Err(_) => return 0,
            Ok(_) => {}
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_sections_do_not_count() {
        let one = wat::parse_str("(module (func (result i32) (i32.const 1)))").unwrap();
        let size = code_size(&one);
        assert!(size > 0 && size < 16, "{size}");
        let mut padded = one.clone();
        // A custom section named "x" with 100 bytes of content.
        padded.extend([0, 102, 1, b'x']);
        padded.extend([0u8; 100]);
        assert_eq!(code_size(&padded), size);
        assert_eq!(code_size(&wat::parse_str("(module)").unwrap()), 0);
        assert_eq!(code_size(b"not wasm"), 0);
    }
}
