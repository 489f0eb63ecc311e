//! Download progress on stderr: one indicatif bar per download, drawn only when stderr is a
//! terminal and neither `--json` nor `-q` was given.

use indicatif::{MultiProgress, ProgressBar as Bar, ProgressStyle};

use crate::fetch::{Progress, ProgressBar};

/// Bars under one [`MultiProgress`].
pub struct Bars {
    multi: MultiProgress,
}

impl Bars {
    pub fn new() -> Self {
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
