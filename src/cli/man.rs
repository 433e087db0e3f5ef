//! `killswitch man`: the man pages, generated from the command-line definitions themselves.

use clap::CommandFactory;

use super::Cli;
use crate::error::Error;

/// The man page on stdout, or one page per command in `dir`.
pub fn man_pages(dir: Option<&std::path::Path>) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Usage(format!("writing the man page: {e}"));
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let page = man_page(clap_mangen::Man::new(cmd.clone()), &cmd).map_err(io)?;
        let _ = std::io::Write::write_all(&mut std::io::stdout(), &page);
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let write = |name: String, cmd: clap::Command| -> Result<(), Error> {
        let page =
            man_page(clap_mangen::Man::new(cmd.clone()).title(name.clone()), &cmd).map_err(io)?;
        std::fs::write(dir.join(format!("{name}.1")), page).map_err(io)
    };
    for sub in cmd.get_subcommands() {
        let name = format!("killswitch-{}", sub.get_name());
        write(name.clone(), sub.clone().name(name).version(super::VERSION))?;
    }
    write("killswitch".into(), cmd)?;
    eprintln!("killswitch: man pages written to {}", dir.display());
    Ok(())
}

/// clap_mangen's sections, with the examples as typed (no fill, no justification, ASCII
/// hyphens: a copied command must run) and the exit codes in their own section.
fn man_page(man: clap_mangen::Man, cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut page)?;
    }
    let after = cmd
        .get_after_long_help()
        .or(cmd.get_after_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let (examples, exit_codes) = match after.find("Exit codes:") {
        Some(i) => (&after[..i], Some(&after[i..])),
        None => (after.as_str(), None),
    };
    let examples = examples
        .trim()
        .trim_start_matches("Examples:")
        .trim_matches('\n');
    if !examples.trim().is_empty() {
        page.extend_from_slice(b".SH EXAMPLES\n.nf\n");
        for line in examples.lines() {
            page.extend_from_slice(roff_literal(line.trim_start()).as_bytes());
            page.push(b'\n');
        }
        page.extend_from_slice(b".fi\n");
    }
    if let Some(codes) = exit_codes {
        page.extend_from_slice(b".SH \"EXIT STATUS\"\n");
        page.extend_from_slice(roff_literal(&codes.replace('\n', " ")).as_bytes());
        page.push(b'\n');
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    Ok(page)
}

/// A line roff prints as written.
fn roff_literal(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
