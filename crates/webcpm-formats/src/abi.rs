//! Which system interface an atom needs, read from the module names of its function imports,
//! as Wasmer's `is_wasix_module` does: any `wasix_32v1` import makes it WASIX on 32-bit memory,
//! any `wasix_64v1` or `wasix_http_client_v1` import WASIX on 64-bit memory; otherwise an import
//! of `wasi`.`thread-spawn` makes it wasi-threads (preview 1 with threads), then
//! `wasi_snapshot_preview1` makes it WASI preview 1, and `wasi_unstable` preview 0.

use wasmparser::{Parser, Payload, TypeRef};

use crate::package::Abi;

/// The ABI of a module; [`Abi::Other`] for bytes that do not parse as one.
pub fn abi_of(wasm: &[u8]) -> Abi {
    let mut modules: Vec<&str> = Vec::new();
    let mut spawns_threads = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ImportSection(reader)) => {
                for import in reader.into_imports().flatten() {
                    if !matches!(import.ty, TypeRef::Func(_)) {
                        continue;
                    }
                    spawns_threads |= import.module == "wasi" && import.name == "thread-spawn";
                    if !modules.contains(&import.module) {
                        modules.push(import.module);
                    }
                }
            }
            // Imports come before code: nothing after this section can change the answer.
            Ok(Payload::CodeSectionStart { .. }) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let has = |name: &str| modules.contains(&name);
    if has("wasix_32v1") {
        Abi::Wasix32
    } else if has("wasix_64v1") || has("wasix_http_client_v1") {
        Abi::Wasix64
    } else if spawns_threads {
        Abi::WasiThreads
    } else if has("wasi_snapshot_preview1") {
        Abi::Preview1
    } else if has("wasi_unstable") {
        Abi::Preview0
    } else {
        Abi::Other
    }
}

/// The imports through which a module can reach the network: WASIX sockets, name resolution
/// and the HTTP client. Empty for a module that cannot (WASI preview 0 and 1 have no sockets).
pub fn network_imports(wasm: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ImportSection(reader)) => {
                for import in reader.into_imports().flatten() {
                    let wasix = matches!(import.module, "wasix_32v1" | "wasix_64v1");
                    let networked = import.module == "wasix_http_client_v1"
                        || wasix
                            && (import.name.starts_with("sock_")
                                || import.name.starts_with("port_")
                                || import.name == "resolve");
                    if networked && !found.iter().any(|f| f == import.name) {
                        found.push(import.name.to_string());
                    }
                }
            }
            Ok(Payload::CodeSectionStart { .. }) | Err(_) => break,
            Ok(_) => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_imports_are_network_imports() {
        let wasm = wat::parse_str(
            r#"(module (import "wasix_32v1" "sock_listen" (func))
                       (import "wasix_32v1" "fd_write" (func))
                       (import "wasi_snapshot_preview1" "sock_accept" (func)))"#,
        )
        .unwrap();
        assert_eq!(network_imports(&wasm), vec!["sock_listen".to_string()]);
        assert!(network_imports(&wat::parse_str("(module)").unwrap()).is_empty());
    }

    fn abi(wat: &str) -> Abi {
        abi_of(&wat::parse_str(wat).unwrap())
    }

    #[test]
    fn imports_decide() {
        let import = |m: &str| format!(r#"(module (import "{m}" "f" (func)))"#);
        assert_eq!(abi(&import("wasi_unstable")), Abi::Preview0);
        assert_eq!(abi(&import("wasi_snapshot_preview1")), Abi::Preview1);
        assert_eq!(abi(&import("wasix_32v1")), Abi::Wasix32);
        assert_eq!(abi(&import("wasix_64v1")), Abi::Wasix64);
        assert_eq!(abi(&import("wasix_http_client_v1")), Abi::Wasix64);
        assert_eq!(abi(&import("env")), Abi::Other);
        let threads = r#"(module (import "wasi_snapshot_preview1" "fd_write" (func))
                                  (import "wasi" "thread-spawn" (func)))"#;
        assert_eq!(abi(threads), Abi::WasiThreads);
        assert_eq!(abi("(module)"), Abi::Other);
        assert_eq!(abi_of(b"not wasm"), Abi::Other);
    }

    #[test]
    fn wasix_wins_over_wasi_and_only_functions_count() {
        let both = r#"(module (import "wasi_snapshot_preview1" "a" (func))
                               (import "wasix_32v1" "b" (func)))"#;
        assert_eq!(abi(both), Abi::Wasix32);
        let memory = r#"(module (import "wasix_32v1" "memory" (memory 1))
                                 (import "wasi_unstable" "f" (func)))"#;
        assert_eq!(abi(memory), Abi::Preview0);
    }
}
