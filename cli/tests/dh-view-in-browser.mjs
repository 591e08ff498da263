// Opens a DHAT file from `tracealloc export --format dhat` in Valgrind's dh_view.html (headless
// Chromium, playwright-core), through its file picker as a user would, and checks: no script
// errors and no load error; the profile's program points show FUNCTION; with lifetimes (BKLT
// "true"), the times show t-gmax, each point shows its lifetime figures, and sorting by
// "At t-gmax (bytes)" still shows FUNCTION. Usage: node <this> DH_VIEW FILE FUNCTION BKLT
import { chromium } from "playwright-core";
const [viewer, file, fn, bklt] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
await page.goto("file://" + viewer);
await page.setInputFiles("input[type=file]", file);
await page.waitForFunction(() =>
  document.body.innerText.includes("PP 1/") || document.querySelector(".error"));
const loadError = await page.evaluate(() =>
  [...document.querySelectorAll(".error")].map((e) => e.textContent).join(" "));
const text = await page.evaluate(() => document.body.innerText);
let byPeak = "";
if (bklt === "true") {
  const peak = await page.evaluate(() =>
    [...document.querySelectorAll("select option")].find((o) => o.label === "At t-gmax (bytes)").value);
  await page.selectOption("select", peak);
  byPeak = await page.evaluate(() => document.body.innerText);
}
await browser.close();
const lifetimes = text.includes("t-gmax:") && /avg lifetime \d/.test(text) && text.includes("Max:");
const result = { errors, loadError, shows: text.includes(fn), lifetimes, byPeakShows: byPeak.includes(fn) };
console.log(JSON.stringify(result));
const ok = errors.length === 0 && loadError === "" && result.shows &&
  (bklt !== "true" || (lifetimes && result.byPeakShows));
process.exit(ok ? 0 : 1);
