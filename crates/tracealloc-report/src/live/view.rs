//! Draws the live view: the program's figures, a sparkline of its live memory, the sites table and
//! the keys.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use tracealloc_snapshot::{human_bytes, human_bytes_signed, human_duration_ms};

use super::model::LiveModel;

/// What the bottom line says besides the keys: a message, or the filter being typed.
pub(crate) struct Status<'a> {
    pub(crate) message: &'a str,
    pub(crate) editing_filter: bool,
    pub(crate) paused: bool,
}

pub(crate) fn draw(frame: &mut Frame<'_>, model: &LiveModel, status: &Status<'_>) {
    let [header, chart, table, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(6),
        Constraint::Min(4),
        Constraint::Length(2),
    ])
    .areas(frame.area());
    frame.render_widget(header_lines(model), header);

    let width = chart.width.saturating_sub(2) as usize;
    let history = &model.history[model.history.len().saturating_sub(width)..];
    let top = history.iter().copied().max().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(format!(
                " live memory, one bar a refresh (top {}) ",
                human_bytes(top)
            )))
            .data(history)
            .style(Style::default().fg(Color::Cyan)),
        chart,
    );

    let rows = model.rows();
    let body: Vec<Row<'_>> = rows
        .iter()
        .map(|r| {
            let change = Style::default().fg(match r.change_bytes.signum() {
                1 => Color::Red,
                -1 => Color::Green,
                _ => Color::Reset,
            });
            Row::new(vec![
                Cell::from(human_bytes(r.live_bytes)),
                Cell::from(human_bytes_signed(r.change_bytes)).style(change),
                Cell::from(human_bytes(r.total_bytes)),
                Cell::from(format!("{:.0}", r.rate)),
                Cell::from(r.key.clone()),
            ])
        })
        .collect();
    let title = format!(
        " {} by {}, sorted by {}{} ",
        match rows.len() {
            1 => "1 site".to_owned(),
            n => format!("{n} sites"),
        },
        format!("{:?}", model.by).to_lowercase(),
        model.sort.name(),
        if model.filter.is_empty() {
            String::new()
        } else {
            format!(", matching \"{}\"", model.filter)
        }
    );
    frame.render_widget(
        Table::new(
            body,
            [
                Constraint::Length(11),
                Constraint::Length(12),
                Constraint::Length(11),
                Constraint::Length(9),
                Constraint::Min(20),
            ],
        )
        .header(
            Row::new(["live", "since start", "total", "allocs/s", "site"])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(Block::default().borders(Borders::ALL).title(title)),
        table,
    );

    let keys = "q quit  s save snapshot  r reset peak  c capture on/off  +/- sample finer/coarser  b group  o sort  / filter  p pause";
    let second = if status.editing_filter {
        format!("filter: {}_  (Enter to apply, Esc to clear)", model.filter)
    } else if status.paused {
        format!("paused (p to resume)  {}", status.message)
    } else {
        status.message.to_owned()
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(keys, Style::default().fg(Color::DarkGray))),
            Line::from(second),
        ]),
        footer,
    );
}

fn header_lines(model: &LiveModel) -> Paragraph<'static> {
    let s = &model.stats;
    let t = &s.totals;
    let command = model.snapshot.meta.command.join(" ");
    let mode = match s.sampling_bytes {
        0 => "exact".to_owned(),
        mean => format!("sampled every {}", human_bytes(mean)),
    };
    let capture = if s.capturing {
        "capture on"
    } else {
        "capture OFF"
    };
    Paragraph::new(vec![
        Line::from(vec![
            Span::styled(
                format!("pid {} ", s.pid),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(command),
        ]),
        Line::from(format!(
            "live {} in {} blocks · peak {} · RSS {} · allocated {} · {mode} · {capture} · up {}",
            human_bytes(t.live_bytes),
            tracealloc_snapshot::human_count(t.live_blocks),
            human_bytes(t.peak_bytes),
            human_bytes(s.rss_bytes),
            human_bytes(t.total_bytes),
            human_duration_ms(s.uptime_ms),
        )),
    ])
}
