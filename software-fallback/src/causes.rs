//! [`Causes`]: an error and its causes as one line of text.
//!
//! Error messages in swapaccel do not repeat their `#[source]` (a CLI that prints the chain
//! would show each cause twice), so `to_string()` on an error gives its outermost message
//! alone. Where an error is kept as *text* — a report, a C caller's last error, the reason a
//! device is not used — that would drop the OS error that explains it; `Causes` keeps it.
//! Log lines do not need it: they record the error itself (`error = &e as &dyn Error`), and
//! the subscriber prints its sources.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its sources, `"outer: inner: innermost"`.
///
/// ```
/// use software_fallback::Causes;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot open the swap file")]
/// struct OpenFailed(#[source] std::io::Error);
///
/// let e = OpenFailed(std::io::Error::other("disk on fire"));
/// assert_eq!(e.to_string(), "cannot open the swap file");
/// assert_eq!(Causes(&e).to_string(), "cannot open the swap file: disk on fire");
/// ```
#[derive(Clone, Copy)]
pub struct Causes<'a>(pub &'a dyn Error);

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    #[test]
    fn every_level_once_outermost_first() {
        let e = Layer(
            "a",
            Some(Box::new(Layer("b", Some(Box::new(Layer("c", None)))))),
        );
        assert_eq!(Causes(&e).to_string(), "a: b: c");
        assert_eq!(Causes(&Layer("alone", None)).to_string(), "alone");
    }
}
