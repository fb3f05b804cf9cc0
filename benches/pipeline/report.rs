//! Printing figures: each as `name: value unit`, with its budget and PASS/OVER where one
//! exists, and all of them again at the end.

pub enum Budget {
    AtMost(f64),
    AtLeast(f64),
}

/// Prints each figure as it is measured and all of them again at the end.
#[derive(Default)]
pub struct Report {
    lines: Vec<String>,
}

impl Report {
    pub fn value(&mut self, name: &str, value: f64, unit: &str, decimals: usize) {
        self.emit(format!("{name}: {value:.decimals$} {unit}"));
    }

    pub fn budget(&mut self, name: &str, value: f64, unit: &str, decimals: usize, budget: Budget) {
        let (sign, limit, ok) = match budget {
            Budget::AtMost(limit) => ("<=", limit, value <= limit),
            Budget::AtLeast(limit) => (">=", limit, value >= limit),
        };
        let verdict = if ok {
            "PASS".to_string()
        } else {
            let off = (value - limit).abs();
            format!(
                "OVER by {off:.decimals$} {unit} ({:.0} %)",
                100.0 * off / limit
            )
        };
        self.emit(format!(
            "{name}: {value:.decimals$} {unit} (budget {sign} {limit} {unit}) {verdict}"
        ));
    }

    pub fn info(&mut self, name: &str, text: String) {
        println!("  {name}: {text}");
    }

    pub fn emit(&mut self, line: String) {
        println!("{line}");
        self.lines.push(line);
    }

    pub fn summary(&self) {
        println!();
        println!("== summary ==");
        for line in &self.lines {
            println!("{line}");
        }
    }
}

pub fn section(title: &str) {
    println!();
    println!("-- {title}");
}

pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
