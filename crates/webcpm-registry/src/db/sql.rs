//! One connection to the registry's metadata, on SQLite (the embedded default, a file in the
//! registry root) or on PostgreSQL (`--database postgres://...`), and the three things the table
//! groups need from it: statements with positional parameters, rows of plain values, and
//! transactions.
//!
//! Every statement is written once: parameters are `$1`, `$2`... (rewritten to SQLite's `?1`,
//! `?2`...), and values are 64-bit integers, doubles, text or NULL (flags are integers 0 and 1 in
//! both schemas). What differs between the two databases, the migrations and how a transaction
//! begins, lives here and in `migrations.rs`.

use std::fmt;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A value bound to a parameter or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<i64> for Val {
    fn from(n: i64) -> Self {
        Val::Int(n)
    }
}

impl From<u8> for Val {
    fn from(n: u8) -> Self {
        Val::Int(n.into())
    }
}

impl From<u32> for Val {
    fn from(n: u32) -> Self {
        Val::Int(n.into())
    }
}

impl From<bool> for Val {
    fn from(b: bool) -> Self {
        Val::Int(b.into())
    }
}

impl From<f64> for Val {
    fn from(x: f64) -> Self {
        Val::Real(x)
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::Text(s.to_string())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Self {
        Val::Text(s)
    }
}

impl From<&String> for Val {
    fn from(s: &String) -> Self {
        Val::Text(s.clone())
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

/// The arguments of a statement: `args![a, b]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { &[$($crate::db::sql::Val::from($v)),*][..] };
}
pub(crate) use args;

/// A row: its values in the order of the `SELECT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Val>);

/// A column that does not hold what the code reads from it.
#[derive(Debug, thiserror::Error)]
#[error("column {index} holds {found:?}, not {wanted}")]
pub struct BadColumn {
    index: usize,
    found: Option<Val>,
    wanted: &'static str,
}

impl Row {
    fn bad(&self, index: usize, wanted: &'static str) -> BadColumn {
        BadColumn {
            index,
            found: self.0.get(index).cloned(),
            wanted,
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, BadColumn> {
        match self.0.get(i) {
            Some(Val::Int(n)) => Ok(*n),
            _ => Err(self.bad(i, "an integer")),
        }
    }

    pub fn flag(&self, i: usize) -> Result<bool, BadColumn> {
        self.int(i).map(|n| n != 0)
    }

    pub fn real(&self, i: usize) -> Result<f64, BadColumn> {
        match self.0.get(i) {
            Some(Val::Real(x)) => Ok(*x),
            Some(Val::Int(n)) => Ok(*n as f64),
            _ => Err(self.bad(i, "a number")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, BadColumn> {
        match self.0.get(i) {
            Some(Val::Text(s)) => Ok(s.clone()),
            _ => Err(self.bad(i, "text")),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, BadColumn> {
        match self.0.get(i) {
            Some(Val::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

/// A failed statement, from either database.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres_text(.0))]
    Postgres(#[from] postgres::Error),
    #[error("{0}")]
    Column(#[from] BadColumn),
}

/// PostgreSQL's message with its detail, when the server sent one.
fn postgres_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        // A connection error's own text says only "error connecting to server".
        None => crate::error_text::error_chain(e),
    }
}

impl SqlError {
    /// Whether a unique key refused the write (a concurrent writer got there first).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            }
            SqlError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// An open connection.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Pg>),
}

/// A PostgreSQL connection with its prepared statements, by text (rusqlite caches its own), so
/// that a statement costs one round trip after its first use.
pub struct Pg {
    client: postgres::Client,
    statements: std::collections::HashMap<String, postgres::Statement>,
}

impl Pg {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conn({:?})", self.dialect())
    }
}

impl Conn {
    pub fn postgres(client: postgres::Client) -> Conn {
        Conn::Postgres(Box::new(Pg {
            client,
            statements: std::collections::HashMap::new(),
        }))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, args: &[Val]) -> Result<u64, SqlError> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sqlite_text(sql))?;
                Ok(stmt.execute(rusqlite::params_from_iter(args))? as u64)
            }
            Conn::Postgres(c) => {
                let statement = c.statement(sql)?;
                Ok(c.client.execute(&statement, &pg_args(args))?)
            }
        }
    }

    /// Runs a query; returns every row.
    pub fn query(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>, SqlError> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sqlite_text(sql))?;
                let width = stmt.column_count();
                let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
                    (0..width)
                        .map(|i| r.get_ref(i).map(sqlite_val))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Row)
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            }
            Conn::Postgres(c) => {
                let statement = c.statement(sql)?;
                c.client
                    .query(&statement, &pg_args(args))?
                    .iter()
                    .map(pg_row)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(SqlError::from)
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&mut self, sql: &str, args: &[Val]) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    /// Statements without parameters, separated by `;`.
    pub fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => Ok(c.client.batch_execute(sql)?),
        }
    }

    /// Runs `f` in a transaction that takes the write lock at once (SQLite's `IMMEDIATE`;
    /// PostgreSQL locks rows as it writes them). Commits when `f` succeeds, rolls back when it
    /// fails.
    pub fn transaction<T, E: From<SqlError>>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let begin = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.batch(begin)?;
        match f(self) {
            Ok(value) => {
                self.batch("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = self.batch("ROLLBACK") {
                    tracing::warn!("cannot roll back: {rollback}");
                }
                Err(e)
            }
        }
    }
}

/// `$1` becomes `?1`: SQLite's positional parameter of the same number.
fn sqlite_text(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn sqlite_val(v: rusqlite::types::ValueRef<'_>) -> Val {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(n) => Val::Int(n),
        ValueRef::Real(x) => Val::Real(x),
        ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(String::from_utf8_lossy(t).into()),
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Val::Null => ToSqlOutput::Owned(Value::Null),
            Val::Int(n) => ToSqlOutput::Owned(Value::Integer(*n)),
            Val::Real(x) => ToSqlOutput::Owned(Value::Real(*x)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(n) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
            Val::Int(n) if *ty == Type::BOOL => (*n != 0).to_sql(ty, out),
            Val::Int(n) => n.to_sql(ty, out),
            Val::Real(x) => x.to_sql(ty, out),
            Val::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn pg_args(args: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

fn pg_row(row: &postgres::Row) -> Result<Row, BadColumn> {
    let bad = |index| BadColumn {
        index,
        found: None,
        wanted: "a type this registry writes",
    };
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::Int))
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|n| Val::Int(n.into())))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .map(|v| v.map(|n| Val::Int(n.into())))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|b| Val::Int(b.into())))
        } else if *ty == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i).map(|v| v.map(Val::Real))
        } else {
            row.try_get::<_, Option<String>>(i)
                .map(|v| v.map(Val::Text))
        };
        out.push(value.map_err(|_| bad(i))?.unwrap_or(Val::Null));
    }
    Ok(Row(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_values_round_trip_through_sqlite() {
        assert_eq!(
            sqlite_text("a = $1 AND b = $12 OR c = '$x'"),
            "a = ?1 AND b = ?12 OR c = '$x'"
        );
        let mut conn = Conn::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        conn.batch("CREATE TABLE t (a INTEGER, b REAL, c TEXT)")
            .unwrap();
        let inserted = conn
            .transaction(|c| {
                c.execute(
                    "INSERT INTO t VALUES ($1, $2, $3)",
                    args![7i64, 0.5, None::<&str>],
                )
            })
            .unwrap();
        assert_eq!(inserted, 1);
        let row = conn
            .query_opt("SELECT a, b, c FROM t WHERE a = $1", args![7i64])
            .unwrap()
            .unwrap();
        assert_eq!((row.int(0).unwrap(), row.real(1).unwrap()), (7, 0.5));
        assert_eq!(row.opt_text(2).unwrap(), None);
        assert!(row.text(0).is_err());
        let failed: Result<(), SqlError> = conn.transaction(|c| {
            c.execute("INSERT INTO t VALUES (8, 0, 'x')", &[])?;
            Err(SqlError::Column(row.bad(9, "nothing")))
        });
        assert!(failed.is_err());
        assert_eq!(
            conn.query("SELECT a FROM t", &[]).unwrap().len(),
            1,
            "rolled back"
        );
    }
}
