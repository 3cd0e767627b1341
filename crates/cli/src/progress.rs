//! The terminal side of [`pairguard_run::Progress`]: an indicatif bar with
//! rate and ETA, and notes printed above it.

use indicatif::{ProgressBar, ProgressStyle};
use pairguard_run::Progress;

#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new() -> Self {
        Bar(ProgressBar::hidden())
    }
}

impl Progress for Bar {
    fn start(&self, total: u64, unit: &str) {
        // A new phase of work (robustness draws images, then attacks them).
        self.0.reset();
        self.0.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.0.set_length(total);
        self.0.set_position(0);
        let template = format!("{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit}  {{per_sec}}  ETA {{eta}}  {{msg}}");
        self.0.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn stage(&self, what: &str) {
        self.0.set_message(what.to_string());
    }

    fn note(&self, message: &str) {
        // The bar draws nothing where standard error is not a terminal (a
        // batch job's log), and its println then prints nothing either.
        if self.0.is_hidden() {
            eprintln!("{message}");
        } else {
            self.0.println(message);
        }
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
