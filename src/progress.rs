//! Progress lines for a person at a terminal, on stderr, during the slow parts (IAM's propagation
//! window, CloudTrail Region by Region, the sweep's wait). Off unless the command line turns it
//! on: Lambda and piped runs keep their logs as they are.

use std::io::Write;
use std::sync::Mutex;

type Sink = Box<dyn Write + Send>;

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Sends progress lines to `sink` from now on (`None` turns them off).
pub fn set_sink(sink: Option<Sink>) {
    if let Ok(mut s) = SINK.lock() {
        *s = sink;
    }
}

/// Progress on stderr.
pub fn to_stderr() {
    set_sink(Some(Box::new(std::io::stderr())));
}

/// One progress line, when someone is watching.
pub fn say(line: impl AsRef<str>) {
    if let Ok(mut s) = SINK.lock()
        && let Some(sink) = s.as_mut()
    {
        let _ = writeln!(sink, "  .. {}", line.as_ref());
        let _ = sink.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_sink_only_while_one_is_set() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        say("before: nobody watching");
        set_sink(Some(Box::new(Shared(buf.clone()))));
        say("waiting 10 s for IAM's propagation window");
        set_sink(None);
        say("after: nobody watching");
        let text = String::from_utf8(buf.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert!(text.contains("  .. waiting 10 s for IAM's propagation window\n"));
        assert!(!text.contains("nobody watching"), "{text}");
    }
}
