//! SQL built at run time from fixed fragments: [`Bindings`] collects the values and hands out
//! their `$n` placeholders (which SQLite and PostgreSQL both accept), so no value is ever
//! spliced into SQL text.

use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Arg {
        Arg::Int(value)
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Arg {
        Arg::Text(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Arg {
        Arg::Text(value.to_owned())
    }
}

/// The values of one statement, in placeholder order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bindings(Vec<Arg>);

impl Bindings {
    /// Adds a value; returns its placeholder (`$1`, `$2`, …).
    pub(crate) fn push(&mut self, value: impl Into<Arg>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }

    /// `sql` with every value bound.
    pub(crate) fn query<'q>(&self, sql: &'q str) -> Query<'q, Any, AnyArguments<'q>> {
        self.0.iter().fold(sqlx::query(sql), |query, arg| match arg {
            Arg::Int(value) => query.bind(*value),
            Arg::Text(value) => query.bind(value.clone()),
        })
    }
}
