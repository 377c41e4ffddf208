//! One rule for every error type in headroom: an error's `Display` says its own part and a
//! wrapped cause is its `source()`, never repeated in the text. [`line`] joins the chain into
//! the one line a user reads (as `{:#}` does for the commands' `anyhow` errors), wherever an
//! error becomes text in a report or a note.

use std::error::Error;

use crate::model::ModelError;
use crate::time::TimeError;
use crate::units::QuantityError;

/// What is wrong with a value, before the file and the entry are named. A cause is the
/// `source()`: `horizon` -> `duration \`0d\` must be greater than zero`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    #[error("{key}")]
    Time {
        key: String,
        #[source]
        source: TimeError,
    },
    #[error("threshold {name}")]
    Quantity {
        name: String,
        #[source]
        source: QuantityError,
    },
    #[error("model")]
    Model(#[source] ModelError),
    /// A key whose value came from elsewhere (`thresholds_query`) and broke a rule.
    #[error("{key}")]
    Within {
        key: String,
        #[source]
        source: Box<Invalid>,
    },
    /// A rule the values break, in words.
    #[error("{0}")]
    Rule(String),
}

impl Invalid {
    pub fn rule(text: impl Into<String>) -> Self {
        Invalid::Rule(text.into())
    }

    pub fn time(key: &str) -> impl FnOnce(TimeError) -> Invalid + '_ {
        move |source| Invalid::Time { key: key.to_string(), source }
    }

    pub fn within(key: &str) -> impl FnOnce(Invalid) -> Invalid + '_ {
        move |source| Invalid::Within { key: key.to_string(), source: Box::new(source) }
    }
}

/// `outer: cause: cause's cause`, the whole chain on one line.
pub fn line(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_chain_reads_as_one_line() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(super::line(&e), "outer: disk full");
    }
}
