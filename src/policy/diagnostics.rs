//! What a policy check reports: each problem with its file, line and field, all of
//! them at once, so that one run of `policies check` shows everything to fix.

use std::fmt;

use toml::Spanned;

/// One thing wrong in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyIssue {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for PolicyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}:{}: {}: {}",
                self.file, line, self.field, self.message
            ),
            None => write!(f, "{}: {}: {}", self.file, self.field, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub struct PolicyError {
    pub issues: Vec<PolicyIssue>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the policies:", self.issues.len())?;
        for issue in &self.issues {
            writeln!(f, "  {issue}")?;
        }
        Ok(())
    }
}

/// A file's text and the name to report it under.
pub(super) struct Source {
    pub(super) name: String,
    pub(super) text: String,
}

impl Source {
    pub(super) fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }
}

/// Collects issues as the checks run.
pub(super) struct Report {
    pub(super) issues: Vec<PolicyIssue>,
}

impl Report {
    pub(super) fn at<T>(
        &mut self,
        source: &Source,
        spanned: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.issues.push(PolicyIssue {
            file: source.name.clone(),
            line: Some(source.line_at(spanned.span().start)),
            field: field.into(),
            message: message.into(),
        });
    }

    pub(super) fn file(
        &mut self,
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.issues.push(PolicyIssue {
            file: file.into(),
            line: None,
            field: field.into(),
            message: message.into(),
        });
    }
}
