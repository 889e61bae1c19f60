//! Scenario transcripts as self-contained HTML: one page per scenario (the
//! story, each step's narration, call, a compact view of the answer, its
//! images inline, timings, expectations) and an index page.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::run::{ScenarioRecord, StepRecord};

const STYLE: &str = r#"
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:0}
.meta{color:#59636e;font-size:13px}.story{background:#fff;border-left:4px solid #3b6fd8;padding:12px 16px;margin:16px 0}
.step{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:14px 16px;margin:12px 0}
.step.failed{border-color:#d1242f}.n{color:#59636e;margin-right:6px}
.call{font:13px/1.4 ui-monospace,Menlo,monospace;background:#f0f2f5;padding:6px 8px;border-radius:4px;white-space:pre-wrap;word-break:break-all}
.answer{margin:8px 0}.error{color:#d1242f}
details summary{cursor:pointer;color:#3b6fd8;font-size:13px}
pre{font:12px/1.4 ui-monospace,Menlo,monospace;background:#f6f8fa;padding:8px;overflow:auto;max-height:360px}
img{max-width:min(100%,720px);border:1px solid #dde1e6;margin:6px 0;background:#000}
.ok{color:#1a7f37}.bad{color:#d1242f}ul.checks{margin:6px 0;padding-left:20px;font-size:13px}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #dde1e6;padding:8px;text-align:left;vertical-align:top}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#eef1f5}
"#;

/// Marks images that did not decode, for a reader and for the browser test.
const SCRIPT: &str = r#"
addEventListener("load",()=>{const imgs=[...document.images];const bad=imgs.filter(i=>!(i.complete&&i.naturalWidth>0));
bad.forEach(i=>{i.alt="image failed to load";i.style.border="2px solid #d1242f"});
document.body.dataset.images=imgs.length;document.body.dataset.brokenImages=bad.length;});
"#;

/// Writes `index.html` and one page per scenario into `dir`.
pub fn write(dir: &Path, records: &[ScenarioRecord], backend: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for record in records {
        std::fs::write(
            dir.join(format!("{}.html", record.name)),
            page(record, backend),
        )?;
    }
    std::fs::write(dir.join("index.html"), index(records, backend))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style><script>{SCRIPT}</script></head><body><main>{body}</main></body></html>\n",
        escape(title)
    )
}

fn index(records: &[ScenarioRecord], backend: &str) -> String {
    let passed = records.iter().filter(|r| r.passed()).count();
    let mut body = format!(
        "<h1>Clinical workflow scenarios</h1><p class=\"meta\">{passed} of {} passed · {} · synthetic patients only</p><table><tr><th>scenario</th><th>level</th><th>steps</th><th>result</th><th>time</th></tr>",
        records.len(),
        escape(backend)
    );
    for record in records {
        let _ = write!(
            body,
            "<tr><td><a href=\"{}.html\">{}</a><div class=\"meta\">{}</div></td><td><span class=\"badge\">{}</span></td><td>{}</td><td class=\"{}\">{}</td><td>{:.1} s</td></tr>",
            escape(&record.name),
            escape(&record.title),
            escape(&first_sentence(&record.story)),
            record.level.name(),
            record.steps.len(),
            if record.passed() { "ok" } else { "bad" },
            if record.passed() { "passed" } else { "failed" },
            record.duration.as_secs_f64()
        );
    }
    body.push_str("</table>");
    shell("Clinical workflow scenarios", &body)
}

fn first_sentence(text: &str) -> String {
    match text.find(". ") {
        Some(end) => text[..=end].to_owned(),
        None => text.to_owned(),
    }
}

fn page(record: &ScenarioRecord, backend: &str) -> String {
    let mut body = format!(
        "<p class=\"meta\"><a href=\"index.html\">All scenarios</a></p><h1>{}</h1><p class=\"meta\">{} · level {} · {} set · {} · {:.1} s · <span class=\"{}\">{}</span></p><div class=\"story\">{}</div>",
        escape(&record.title),
        escape(&record.name),
        record.level.name(),
        escape(&record.fixtures),
        escape(backend),
        record.duration.as_secs_f64(),
        if record.passed() { "ok" } else { "bad" },
        if record.passed() { "passed" } else { "failed" },
        escape(&record.story)
    );
    for (n, step) in record.steps.iter().enumerate() {
        body.push_str(&step_html(n + 1, step));
    }
    if let Some(error) = &record.error {
        let _ = write!(body, "<p class=\"error\">Stopped: {}</p>", escape(error));
    }
    shell(&record.title, &body)
}

fn step_html(n: usize, step: &StepRecord) -> String {
    let failed = !step.failures.is_empty();
    let mut html = format!(
        "<section class=\"step{}\"><h2><span class=\"n\">{n}.</span>{}</h2>",
        if failed { " failed" } else { "" },
        escape(&step.narration)
    );
    let arguments = serde_json::to_string(&step.arguments).unwrap_or_default();
    let _ = write!(
        html,
        "<div class=\"call\">{} {}</div>",
        escape(&step.tool),
        escape(&clip(&arguments, 600))
    );
    let summary = step
        .structured
        .as_ref()
        .and_then(|s| s.get("summary"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| step.text.lines().next().unwrap_or("").to_owned());
    let _ = write!(
        html,
        "<div class=\"answer{}\">{}{} <span class=\"meta\">({} ms)</span></div>",
        if step.is_error { " error" } else { "" },
        if step.is_error { "Error: " } else { "" },
        escape(&clip(&summary, 600)),
        step.duration.as_millis()
    );
    for image in &step.images {
        let _ = write!(
            html,
            "<img src=\"data:image/png;base64,{image}\" alt=\"an image the tool returned\">"
        );
    }
    if let Some(structured) = &step.structured {
        let pretty = serde_json::to_string_pretty(structured).unwrap_or_default();
        let _ = write!(
            html,
            "<details><summary>answer ({} bytes)</summary><pre>{}</pre></details>",
            pretty.len(),
            escape(&clip(&pretty, 20_000))
        );
    } else if !step.text.is_empty() {
        let _ = write!(
            html,
            "<details><summary>answer text</summary><pre>{}</pre></details>",
            escape(&clip(&step.text, 20_000))
        );
    }
    if !step.passed.is_empty() || failed {
        html.push_str("<ul class=\"checks\">");
        for said in &step.passed {
            let _ = write!(html, "<li class=\"ok\">✓ {}</li>", escape(said));
        }
        for why in &step.failures {
            let _ = write!(html, "<li class=\"bad\">✗ {}</li>", escape(why));
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
    html
}

fn clip(text: &str, most: usize) -> String {
    if text.len() <= most {
        return text.to_owned();
    }
    let mut end = most;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(clip("ééé", 3), "é…");
    }
}
