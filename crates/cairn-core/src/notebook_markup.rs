//! A notebook's Markdown, parsed and rendered to HTML: a small, bounded subset (headings,
//! paragraphs, fenced code, lists, quotes, rules; inline code, strong, emphasis, http(s) links)
//! and the embeds — `[[run:ID]]`, `[[model:NAME@VERSION]]` inline, `{{query …}}` and
//! `{{chart …}}` and `{{compare runs=…}}` on a line of their own. Pure: what an embed shows is the caller's
//! ([`EmbedRenderer`]); `notebook_render.rs` draws them from the workspace.
//!
//! The text is outside input (a teammate's, through sync): everything from it is escaped, a
//! link keeps only an http(s) address, and there are bounds — [`MAX_EMBEDS`] embeds rendered,
//! inline nesting at most [`MAX_INLINE_DEPTH`] deep. A fuzz target (`notebook_markup`) checks
//! that no input yields a tag this module does not write.
//!
//! Why not a Markdown crate: none is among the workspace's dependencies, a full CommonMark
//! renderer passes raw HTML through unless told not to, and this subset is what notes need.

/// The most embeds one render draws; the rest show as a note saying so.
pub const MAX_EMBEDS: usize = 200;
/// How deep strong/emphasis/link text may nest.
pub const MAX_INLINE_DEPTH: usize = 4;
/// The longest embed (between its brackets).
pub const MAX_EMBED_LEN: usize = 1000;

/// One embed as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Embed {
    /// A run by id or id prefix.
    Run(String),
    /// A registered model's version.
    Model { name: String, version: u32 },
    /// A table of the runs a search query matches.
    Query(String),
    /// A line chart of `metric` over `runs`.
    Chart {
        runs: Vec<String>,
        metric: String,
        smooth: f64,
    },
    /// Runs side by side: their status, the params that differ and their metrics.
    Compare { runs: Vec<String> },
    /// Something in embed brackets that is not a valid embed, and why.
    Bad { raw: String, why: String },
}

/// A block of the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Para(String),
    Code(String),
    List { ordered: bool, items: Vec<String> },
    Quote(String),
    Rule,
    Embed(Embed),
}

/// Draws an embed as HTML (safe: the renderer escapes what it takes from the embed).
pub trait EmbedRenderer {
    fn render(&mut self, embed: &Embed) -> String;
}

/// Parses the text into blocks.
pub fn parse(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut list: Option<(bool, Vec<String>)> = None;
    let mut quote: Vec<&str> = Vec::new();
    let mut code: Option<Vec<&str>> = None;
    fn flush(
        blocks: &mut Vec<Block>,
        para: &mut Vec<&str>,
        list: &mut Option<(bool, Vec<String>)>,
        quote: &mut Vec<&str>,
    ) {
        if !para.is_empty() {
            blocks.push(Block::Para(para.join("\n")));
            para.clear();
        }
        if let Some((ordered, items)) = list.take() {
            blocks.push(Block::List { ordered, items });
        }
        if !quote.is_empty() {
            blocks.push(Block::Quote(quote.join("\n")));
            quote.clear();
        }
    }
    for line in text.lines() {
        if let Some(lines) = &mut code {
            if line.trim_start().starts_with("```") {
                blocks.push(Block::Code(lines.join("\n")));
                code = None;
            } else {
                lines.push(line);
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            flush(&mut blocks, &mut para, &mut list, &mut quote);
            code = Some(Vec::new());
            continue;
        }
        if trimmed.is_empty() {
            flush(&mut blocks, &mut para, &mut list, &mut quote);
            continue;
        }
        if let Some(embed) = block_embed(trimmed) {
            flush(&mut blocks, &mut para, &mut list, &mut quote);
            blocks.push(Block::Embed(embed));
            continue;
        }
        if let Some((level, rest)) = heading(trimmed) {
            flush(&mut blocks, &mut para, &mut list, &mut quote);
            blocks.push(Block::Heading(level, rest.to_owned()));
            continue;
        }
        if trimmed == "---" || trimmed == "***" {
            flush(&mut blocks, &mut para, &mut list, &mut quote);
            blocks.push(Block::Rule);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('>') {
            if quote.is_empty() {
                flush(&mut blocks, &mut para, &mut list, &mut quote);
            }
            quote.push(rest.trim_start());
            continue;
        }
        if let Some((ordered, item)) = list_item(trimmed) {
            match &mut list {
                Some((o, items)) if *o == ordered => items.push(item.to_owned()),
                _ => {
                    flush(&mut blocks, &mut para, &mut list, &mut quote);
                    list = Some((ordered, vec![item.to_owned()]));
                }
            }
            continue;
        }
        if list.is_some() || !quote.is_empty() {
            flush(&mut blocks, &mut para, &mut list, &mut quote);
        }
        para.push(trimmed);
    }
    if let Some(lines) = code {
        blocks.push(Block::Code(lines.join("\n")));
    }
    flush(&mut blocks, &mut para, &mut list, &mut quote);
    blocks
}

fn heading(line: &str) -> Option<(u8, &str)> {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    (rest.is_empty() || rest.starts_with(' ')).then(|| (level as u8, rest.trim()))
}

fn list_item(line: &str) -> Option<(bool, &str)> {
    if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
        return Some((false, rest));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        return line[digits..].strip_prefix(". ").map(|rest| (true, rest));
    }
    None
}

/// `{{query …}}` or `{{chart …}}` filling a line.
fn block_embed(line: &str) -> Option<Embed> {
    let inner = line.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("}}") {
        return None;
    }
    let raw = || line.chars().take(MAX_EMBED_LEN).collect::<String>();
    if inner.len() > MAX_EMBED_LEN {
        return Some(Embed::Bad {
            raw: raw(),
            why: format!("an embed is at most {MAX_EMBED_LEN} bytes"),
        });
    }
    let (kind, rest) = inner
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((inner.trim(), ""));
    let rest = rest.trim();
    Some(match kind {
        "query" if rest.is_empty() => Embed::Bad {
            raw: raw(),
            why: "a query embed needs a query: {{query params.lr > 0.01}}".into(),
        },
        "query" => Embed::Query(rest.to_owned()),
        "chart" => chart(rest).unwrap_or_else(|why| Embed::Bad { raw: raw(), why }),
        "compare" => compare(rest).unwrap_or_else(|why| Embed::Bad { raw: raw(), why }),
        other => Embed::Bad {
            raw: raw(),
            why: format!(
                "'{other}' is no embed: {{{{query …}}}}, {{{{chart …}}}} or {{{{compare …}}}}"
            ),
        },
    })
}

fn chart(args: &str) -> Result<Embed, String> {
    let (mut runs, mut metric, mut smooth) = (Vec::new(), None, 0.0);
    for arg in args.split_whitespace() {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| format!("'{arg}' is not key=value"))?;
        match k {
            "runs" => {
                runs = v
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "metric" => metric = Some(v.to_owned()),
            "smooth" => {
                smooth = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.0..1.0).contains(s))
                    .ok_or_else(|| format!("smooth '{v}' is not a number in 0..1"))?;
            }
            other => {
                return Err(format!(
                    "'{other}' is not a chart field (runs, metric, smooth)"
                ));
            }
        }
    }
    let metric = metric.ok_or("a chart needs metric=KEY")?;
    if runs.is_empty() {
        return Err("a chart needs runs=ID,ID".into());
    }
    Ok(Embed::Chart {
        runs,
        metric,
        smooth,
    })
}

/// The most runs a comparison sets side by side.
pub const MAX_COMPARED: usize = 8;

fn compare(args: &str) -> Result<Embed, String> {
    let mut runs = Vec::new();
    for arg in args.split_whitespace() {
        match arg.split_once('=') {
            Some(("runs", v)) => {
                runs = v
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            Some((other, _)) => {
                return Err(format!("'{other}' is not a comparison field (runs)"));
            }
            None => return Err(format!("'{arg}' is not key=value")),
        }
    }
    if !(2..=MAX_COMPARED).contains(&runs.len()) {
        return Err(format!(
            "a comparison needs 2 to {MAX_COMPARED} runs: runs=ID,ID (it names {})",
            runs.len()
        ));
    }
    Ok(Embed::Compare { runs })
}

/// `run:ID` or `model:NAME@VERSION`, the inside of `[[…]]`.
fn inline_embed(inner: &str) -> Embed {
    let bad = |why: String| Embed::Bad {
        raw: format!(
            "[[{}]]",
            inner.chars().take(MAX_EMBED_LEN).collect::<String>()
        ),
        why,
    };
    if let Some(id) = inner.strip_prefix("run:") {
        let id = id.trim();
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("a run embed takes a run id or id prefix (hex digits)".into());
        }
        return Embed::Run(id.to_ascii_lowercase());
    }
    if let Some(spec) = inner.strip_prefix("model:") {
        return match spec.rsplit_once('@') {
            Some((name, v)) if !name.trim().is_empty() => match v.trim().parse::<u32>() {
                Ok(version) => Embed::Model {
                    name: name.trim().to_owned(),
                    version,
                },
                Err(_) => bad(format!("'{v}' is not a version number")),
            },
            _ => bad("a model embed is [[model:NAME@VERSION]]".into()),
        };
    }
    bad("an inline embed is [[run:ID]] or [[model:NAME@VERSION]]".into())
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The text, escaped.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape(text, &mut out);
    out
}

/// Renders the blocks as an HTML fragment.
pub fn to_html(blocks: &[Block], embeds: &mut dyn EmbedRenderer) -> String {
    let mut r = Render {
        out: String::new(),
        embeds,
        count: 0,
    };
    for block in blocks {
        r.block(block);
    }
    r.out
}

struct Render<'a> {
    out: String,
    embeds: &'a mut dyn EmbedRenderer,
    count: usize,
}

impl Render<'_> {
    fn embed(&mut self, e: &Embed) {
        self.count += 1;
        if let Embed::Bad { raw, why } = e {
            self.out
                .push_str("<span class=\"nb-embed nb-bad\" title=\"");
            escape(why, &mut self.out);
            self.out.push_str("\">");
            escape(raw, &mut self.out);
            self.out.push_str(" — ");
            escape(why, &mut self.out);
            self.out.push_str("</span>");
        } else if self.count > MAX_EMBEDS {
            self.out.push_str(&format!(
                "<span class=\"nb-embed nb-bad\">embed not drawn: a notebook draws at most {MAX_EMBEDS}</span>"
            ));
        } else {
            let html = self.embeds.render(e);
            self.out.push_str(&html);
        }
    }

    fn block(&mut self, block: &Block) {
        match block {
            Block::Heading(level, text) => {
                self.out.push_str(&format!("<h{level}>"));
                self.inline(text, 0);
                self.out.push_str(&format!("</h{level}>\n"));
            }
            Block::Para(text) => {
                self.out.push_str("<p>");
                self.inline(text, 0);
                self.out.push_str("</p>\n");
            }
            Block::Code(text) => {
                self.out.push_str("<pre><code>");
                escape(text, &mut self.out);
                self.out.push_str("</code></pre>\n");
            }
            Block::List { ordered, items } => {
                let tag = if *ordered { "ol" } else { "ul" };
                self.out.push_str(&format!("<{tag}>\n"));
                for item in items {
                    self.out.push_str("<li>");
                    self.inline(item, 0);
                    self.out.push_str("</li>\n");
                }
                self.out.push_str(&format!("</{tag}>\n"));
            }
            Block::Quote(text) => {
                self.out.push_str("<blockquote><p>");
                self.inline(text, 0);
                self.out.push_str("</p></blockquote>\n");
            }
            Block::Rule => self.out.push_str("<hr>\n"),
            Block::Embed(e) => {
                self.out.push_str("<div class=\"nb-block\">");
                self.embed(e);
                self.out.push_str("</div>\n");
            }
        }
    }

    fn inline(&mut self, text: &str, depth: usize) {
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("[[")
                && let Some(end) = after.find("]]")
                && end <= MAX_EMBED_LEN
            {
                self.embed(&inline_embed(&after[..end]));
                rest = &after[end + 2..];
                continue;
            }
            if let Some(after) = rest.strip_prefix('`')
                && let Some(end) = after.find('`')
            {
                self.out.push_str("<code>");
                escape(&after[..end], &mut self.out);
                self.out.push_str("</code>");
                rest = &after[end + 1..];
                continue;
            }
            if depth < MAX_INLINE_DEPTH {
                if let Some(after) = rest.strip_prefix("**")
                    && let Some(end) = after.find("**")
                    && end > 0
                {
                    self.out.push_str("<strong>");
                    self.inline(&after[..end], depth + 1);
                    self.out.push_str("</strong>");
                    rest = &after[end + 2..];
                    continue;
                }
                if let Some(after) = rest.strip_prefix('*')
                    && !after.starts_with('*')
                    && let Some(end) = after.find('*')
                    && end > 0
                {
                    self.out.push_str("<em>");
                    self.inline(&after[..end], depth + 1);
                    self.out.push_str("</em>");
                    rest = &after[end + 1..];
                    continue;
                }
                if let Some((label, url, len)) = link(rest) {
                    self.out.push_str("<a href=\"");
                    escape(url, &mut self.out);
                    self.out.push_str("\" rel=\"noopener noreferrer\">");
                    self.inline(label, depth + 1);
                    self.out.push_str("</a>");
                    rest = &rest[len..];
                    continue;
                }
            }
            if c == '\n' {
                self.out.push_str("<br>\n");
            } else {
                escape(c.encode_utf8(&mut [0; 4]), &mut self.out);
            }
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// `[label](http…)` at the start of `text`: the label, the address and the bytes it takes.
/// Only http(s) addresses, without spaces or quotes, make a link.
fn link(text: &str) -> Option<(&str, &str, usize)> {
    let after = text.strip_prefix('[')?;
    let close = after.find("](")?;
    let label = &after[..close];
    if label.is_empty() || label.contains('[') {
        return None;
    }
    let url_start = &after[close + 2..];
    let end = url_start.find(')')?;
    let url = &url_start[..end];
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '<');
    ok.then_some((label, url, 1 + close + 2 + end + 1))
}

/// The tags [`to_html`] writes (for checks that nothing else gets through).
pub const TAGS: &[&str] = &[
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "pre",
    "code",
    "ul",
    "ol",
    "li",
    "blockquote",
    "hr",
    "br",
    "strong",
    "em",
    "a",
    "span",
    "div",
];

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl EmbedRenderer for Echo {
        fn render(&mut self, e: &Embed) -> String {
            format!(
                "<span class=\"nb-embed\">{}</span>",
                escaped(&format!("{e:?}"))
            )
        }
    }

    fn html(text: &str) -> String {
        to_html(&parse(text), &mut Echo)
    }

    #[test]
    fn markdown_subset_renders() {
        let out = html(
            "# Title\n\nSome *em* and **strong** `code`.\n\n- a\n- b\n\n1. one\n\n> quoted\n\n---\n```\n<b>x</b>\n```\n[site](https://example.org)",
        );
        assert!(out.contains("<h1>Title</h1>"), "{out}");
        assert!(
            out.contains("<em>em</em> and <strong>strong</strong> <code>code</code>"),
            "{out}"
        );
        assert!(out.contains("<ul>\n<li>a</li>\n<li>b</li>\n</ul>"), "{out}");
        assert!(out.contains("<ol>\n<li>one</li>"), "{out}");
        assert!(
            out.contains("<blockquote><p>quoted</p></blockquote>"),
            "{out}"
        );
        assert!(out.contains("<hr>"), "{out}");
        assert!(
            out.contains("<pre><code>&lt;b&gt;x&lt;/b&gt;</code></pre>"),
            "{out}"
        );
        assert!(
            out.contains("<a href=\"https://example.org\" rel=\"noopener noreferrer\">site</a>"),
            "{out}"
        );
    }

    #[test]
    fn embeds_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse("{{chart runs=ab12,cd34 metric=loss smooth=0.6}}"),
            [Block::Embed(Embed::Chart {
                runs: vec!["ab12".into(), "cd34".into()],
                metric: "loss".into(),
                smooth: 0.6
            })]
        );
        assert_eq!(
            parse("{{query params.lr > 0.01}}"),
            [Block::Embed(Embed::Query("params.lr > 0.01".into()))]
        );
        let out = html("see [[run:01AB]] and [[model:clf@3]] and [[run:zz]]");
        assert!(out.contains("Run(&quot;01ab&quot;)"), "{out}");
        assert!(
            out.contains("Model { name: &quot;clf&quot;, version: 3 }"),
            "{out}"
        );
        assert!(
            out.contains("nb-bad") && out.contains("hex digits"),
            "{out}"
        );
        let out = html("{{chart metric=loss smooth=2}}");
        assert!(out.contains("not a number in 0..1"), "{out}");
        assert_eq!(
            parse("{{compare runs=ab12,cd34,ef56}}"),
            [Block::Embed(Embed::Compare {
                runs: vec!["ab12".into(), "cd34".into(), "ef56".into()],
            })]
        );
        let out = html("{{compare runs=ab12}}");
        assert!(out.contains("2 to 8 runs"), "{out}");
        let out = html("{{compare metric=loss}}");
        assert!(out.contains("not a comparison field"), "{out}");
    }

    #[test]
    fn nothing_from_the_text_becomes_markup() {
        for text in [
            "<script>alert(1)</script>",
            "[x](javascript:alert(1))",
            "[x](https://a\" onmouseover=\"b)",
            "**<img src=x onerror=y>**",
            "[[run:<b>]]",
            "{{query <script>}}",
            "{{chart runs=<a> metric=\"x\"}}",
        ] {
            let out = html(text);
            assert!(
                !out.contains("<script") && !out.contains("<img") && !out.contains("<b>"),
                "{text}: {out}"
            );
            assert!(!out.contains("javascript:alert(1)\""), "{text}: {out}");
            assert!(!out.contains("\" onmouseover"), "{text}: {out}");
        }
    }

    #[test]
    fn embeds_past_the_bound_are_not_drawn() {
        let text = "[[run:ab]] ".repeat(MAX_EMBEDS + 5);
        let out = html(&text);
        assert_eq!(out.matches("Run(").count(), MAX_EMBEDS);
        assert_eq!(out.matches("embed not drawn").count(), 5);
    }
}
