//! Log output of tests: quiet unless `TEST_LOG` is set, and the tail of a child process's log.

use std::path::Path;
use std::sync::Once;

/// With `TEST_LOG` set, sends `tracing` output to the test writer (shown for failing tests, or
/// all with `--nocapture`), filtered by `RUST_LOG` or else `bookhub=debug,info`. Without it,
/// nothing. Safe to call from every test: the subscriber is installed once per process.
pub fn init_test_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("bookhub=debug,info"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

/// The last `lines` lines of the log at `path`, leaving out lines that contain any of `noise`.
pub fn tail(path: &Path, lines: usize, noise: &[&str]) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: Vec<&str> = text.lines().filter(|l| !noise.iter().any(|n| l.contains(n))).collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}
