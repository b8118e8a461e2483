//! `lightning-wall doctor`: checks a configuration against the real world before traffic — the
//! file, every secret it references, the node (connection, macaroon permissions, a 1-sat hold
//! invoice created and cancelled, liquidity and HTLC slots against the limits) and the client
//! addresses recent deposits came from. One finding per check, each with its fix. It must never
//! print a secret, and it spends nothing: the test invoice is cancelled before anyone can pay it.

mod probe;
pub mod rules;

use std::fmt;

pub use probe::run;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Not checked, and why (does not change the exit status).
    Skip,
    Warn,
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Skip => "skip",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// One check's outcome: what was found and, unless it is fine, what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// What was checked, e.g. `node.lnd.macaroon`, `secret`, `node.inbound`.
    pub check: String,
    pub message: String,
    /// Empty when there is nothing to do.
    pub fix: String,
}

impl Finding {
    pub fn new(
        level: Level,
        check: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            level,
            check: check.to_owned(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub fn ok(check: &str, message: impl Into<String>) -> Self {
        Self::new(Level::Ok, check, message, "")
    }
}

/// Every finding of one run, in the order checked.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
    }

    pub fn worst(&self) -> Level {
        self.findings
            .iter()
            .map(|f| f.level)
            .max()
            .unwrap_or(Level::Ok)
    }

    /// 0: every check passed (or was skipped); 1: warnings only; 2: at least one failure.
    pub fn exit_code(&self) -> u8 {
        match self.worst() {
            Level::Ok | Level::Skip => 0,
            Level::Warn => 1,
            Level::Fail => 2,
        }
    }

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    /// Findings with this level whose check starts with `check`.
    pub fn find(&self, level: Level, check: &str) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.level == level && f.check.starts_with(check))
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .findings
            .iter()
            .map(|x| x.check.len())
            .max()
            .unwrap_or(0);
        for finding in &self.findings {
            writeln!(
                f,
                "{:<4}  {:<width$}  {}",
                finding.level.label(),
                finding.check,
                finding.message
            )?;
            if !finding.fix.is_empty() && finding.level != Level::Ok {
                writeln!(f, "{:<4}  {:<width$}  fix: {}", "", "", finding.fix)?;
            }
        }
        write!(
            f,
            "{} failure(s), {} warning(s), {} skipped, {} ok: exit {}",
            self.count(Level::Fail),
            self.count(Level::Warn),
            self.count(Level::Skip),
            self.count(Level::Ok),
            self.exit_code()
        )
    }
}
