//! SQL built at run time from fixed fragments: [`Bindings`] collects the values and hands out
//! their `$n` placeholders (which SQLite and PostgreSQL both accept), so no value is ever
//! spliced into SQL text.

use super::Dialect;
use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

/// A value bound to a placeholder. `None` is a NULL of that type (PostgreSQL needs to know it).
#[derive(Clone, Debug)]
pub enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Float(Option<f64>),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Arg {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Arg {
        Arg::Int(value)
    }
}

impl From<f64> for Arg {
    fn from(value: f64) -> Arg {
        Arg::Float(Some(value))
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Arg {
        Arg::Text(value)
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Arg {
        Arg::Text(Some(value))
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Arg {
        Arg::Text(Some(value.to_owned()))
    }
}

impl From<Option<&str>> for Arg {
    fn from(value: Option<&str>) -> Arg {
        Arg::Text(value.map(str::to_owned))
    }
}

/// The values of one statement, in placeholder order.
#[derive(Clone, Debug, Default)]
pub struct Bindings {
    values: Vec<Arg>,
    anonymous: bool,
}

impl Bindings {
    /// Bindings for statements that use each value once, in the order pushed: on SQLite their
    /// placeholders are anonymous (`?`). SQLite finds a numbered one (`$n`) by a linear search
    /// when it is bound, so binding thousands of them costs time quadratic in their number;
    /// a statement of anonymous ones binds in linear time.
    pub fn positional(dialect: Dialect) -> Bindings {
        Bindings { values: Vec::new(), anonymous: dialect == Dialect::Sqlite }
    }

    /// Adds a value; returns its placeholder (`$1`, `$2`, …; `?` for [`Bindings::positional`]
    /// on SQLite).
    pub fn push(&mut self, value: impl Into<Arg>) -> String {
        self.values.push(value.into());
        if self.anonymous {
            "?".to_owned()
        } else {
            format!("${}", self.values.len())
        }
    }

    /// Adds the values of one row of a multi-row statement; returns its tuple of placeholders
    /// (`($1, $2, …)`, or `(?, ?, …)`).
    pub fn push_row<const N: usize>(&mut self, values: [Arg; N]) -> String {
        let mut row = String::with_capacity(2 + N * if self.anonymous { 3 } else { 6 });
        row.push('(');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                row.push_str(", ");
            }
            self.values.push(value);
            if self.anonymous {
                row.push('?');
            } else {
                row.push('$');
                row.push_str(&self.values.len().to_string());
            }
        }
        row.push(')');
        row
    }

    /// `sql` with every value bound.
    pub fn query<'q>(&self, sql: &'q str) -> Query<'q, Any, AnyArguments<'q>> {
        self.clone().into_query(sql)
    }

    /// `sql` with every value bound (moved, not copied).
    pub fn into_query<'q>(self, sql: &'q str) -> Query<'q, Any, AnyArguments<'q>> {
        self.values.into_iter().fold(sqlx::query(sql), |query, arg| match arg {
            Arg::Int(value) => query.bind(value),
            Arg::Text(value) => query.bind(value),
            Arg::Float(value) => query.bind(value),
        })
    }
}
