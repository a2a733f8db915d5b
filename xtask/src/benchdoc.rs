//! docs/BENCHMARKS.md: criterion's table first, then one `## ` section per benchmark command
//! that is not criterion (`bench web`, `bench net`). Each command replaces its own section and
//! leaves the others alone; rewriting the criterion table keeps them all.

use anyhow::{Context, Result};

use crate::workspace_root;

/// `doc` with the section under `heading` replaced by `section` (which starts with the
/// heading), or with `section` appended when there is none yet.
pub fn replace_section(doc: &str, heading: &str, section: &str) -> String {
    let section = section.trim_end();
    let Some(at) = doc.find(heading) else {
        return format!("{}\n\n{section}\n", doc.trim_end());
    };
    let after = &doc[at + heading.len()..];
    let rest = after.find("\n## ").map(|i| &after[i + 1..]).unwrap_or("");
    let before = doc[..at].trim_end();
    let mut out = format!("{before}\n\n{section}\n");
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(rest.trim_end());
        out.push('\n');
    }
    out
}

/// Every section after the criterion table (from the first `## ` heading on), if any.
pub fn sections(doc: &str) -> Option<&str> {
    doc.find("\n## ").map(|i| &doc[i + 1..])
}

/// Replaces one section of docs/BENCHMARKS.md.
pub fn write_section(heading: &str, section: &str) -> Result<()> {
    let path = workspace_root().join("docs/BENCHMARKS.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, replace_section(&doc, heading, section))
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote the section `{heading}` of {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_whole_and_the_others_survive() {
        let doc = "# Benchmarks\n\n| a |\n\n## Browser bundle\n\nold\n\n## Network\n\nnet\n";
        let replaced = replace_section(doc, "## Browser bundle", "## Browser bundle\n\nfresh");
        assert!(replaced.contains("fresh") && !replaced.contains("old"));
        assert!(replaced.contains("## Network\n\nnet"));
        assert_eq!(replaced.matches("## Browser bundle").count(), 1);
        let added = replace_section("# Benchmarks\n\n| a |\n", "## Network", "## Network\n\nn");
        assert_eq!(added, "# Benchmarks\n\n| a |\n\n## Network\n\nn\n");
    }

    #[test]
    fn rewriting_the_table_keeps_every_section() {
        let doc = "# Benchmarks\n\n| a |\n\n## Browser bundle\n\nb\n\n## Network\n\nn\n";
        let kept = sections(doc).expect("has sections");
        assert!(kept.starts_with("## Browser bundle") && kept.contains("## Network\n\nn"));
        assert_eq!(sections("# Benchmarks\n\n| a |\n"), None);
    }
}
