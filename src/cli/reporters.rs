//! What long work tells the user on stderr: one indicatif bar per download, drawn only when
//! stderr is a terminal and neither `--json` nor `-q` was given, and a line per compiled atom.

use crate::printer::err;
use indicatif::{MultiProgress, ProgressBar as Bar, ProgressStyle};

use crate::artifacts::CompileReporter;
use crate::fetch::{Progress, ProgressBar};

/// Compile lines on stderr.
pub(super) struct CompileLines {
    pub quiet: bool,
}

impl CompileReporter for CompileLines {
    fn compiling(&self, atom: &str, size: u64) {
        if !self.quiet {
            err!("Compiling {atom} ({size} bytes of WebAssembly)");
        }
    }

    fn compiled(&self, atom: &str, seconds: f64, outcome: Result<u64, &str>) {
        if !self.quiet {
            match outcome {
                Ok(size) => err!("Compiled {atom} in {seconds:.2}s ({size} bytes native)"),
                Err(reason) => err!("Cannot compile {atom}: {reason}"),
            }
        }
    }

    fn tiered(&self, atom: &str) {
        if !self.quiet {
            err!(
                "{atom} runs on baseline code (Winch) until Cranelift's is compiled in the background"
            );
        }
    }

    fn pulled(&self, atom: &str, seconds: f64, size: u64, from: &str) {
        if !self.quiet {
            err!(
                "Pulled {atom} from {from} in {seconds:.2}s ({size} bytes native, not compiled here)"
            );
        }
    }
}

/// Bars under one [`MultiProgress`].
pub(super) struct Bars {
    multi: MultiProgress,
}

impl Bars {
    pub(super) fn new() -> Self {
        Bars {
            multi: MultiProgress::new(),
        }
    }
}

struct OneBar(Bar);

impl ProgressBar for OneBar {
    fn set_total(&mut self, total: u64) {
        self.0.set_length(total);
    }

    fn advance(&mut self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn restart(&mut self) {
        self.0.set_position(0);
    }

    fn finish(&mut self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bars {
    fn start(&self, label: &str, total: u64) -> Box<dyn ProgressBar> {
        let bar = self.multi.add(Bar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:40!} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(format!("Downloading {label}"));
        Box::new(OneBar(bar))
    }
}
