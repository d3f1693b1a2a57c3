// Usage: node check-page.mjs <url> <expected title> <expected first message text>
// Prints one JSON line: {titleVisible, firstMessageVisible, toolHiddenBefore, toolVisibleAfter}.
import { chromium } from 'playwright-core';

const [url, title, firstMessage] = process.argv.slice(2);
const userDataDir = await import('node:fs').then(fs => fs.mkdtempSync('/tmp/ocrpc-chromium-'));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  await page.goto(url, { waitUntil: 'load' });
  const result = {};
  result.documentTitle = await page.title();
  result.titleVisible = await page.getByRole('heading', { level: 1, name: title }).isVisible();
  result.firstMessageVisible = await page.locator('section.msg').first().getByText(firstMessage).isVisible();
  const tool = page.locator('details.tool').first();
  const output = tool.locator('pre.tool-output');
  result.toolHiddenBefore = !(await output.isVisible());
  await tool.locator('summary').click();
  await output.waitFor({ state: 'visible', timeout: 10000 });
  result.toolVisibleAfter = await output.isVisible();
  result.toolOutput = await output.textContent();
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
  (await import('node:fs')).rmSync(userDataDir, { recursive: true, force: true });
}
