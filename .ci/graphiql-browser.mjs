// Drives GraphiQL in headless Chromium against a server started with
// -graphiql-assets, with every request to anything but the server refused:
// the page must load, send a query with an Authorization header and show
// a deployment.
//
// usage: node graphiql-browser.mjs BASE_URL TOKEN SCREENSHOT.png
import { chromium } from 'playwright-core';

const [base, token, screenshot] = process.argv.slice(2);
if (!base || !token || !screenshot) {
  console.error('usage: node graphiql-browser.mjs BASE_URL TOKEN SCREENSHOT.png');
  process.exit(2);
}

const query = '{ project(id: "root/project") { deployments(first: 1, sort: DESC) { nodes { iid status environment { name } } } } }';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let failed = false;
try {
  const page = await browser.newPage();
  const blocked = [];
  const broken = [];
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') {
      return route.continue();
    }
    blocked.push(url.href);
    return route.abort('blockedbyclient');
  });
  page.on('requestfailed', (r) => broken.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on('pageerror', (e) => broken.push(`page error: ${e.message}`));

  await page.goto(base + '/', { waitUntil: 'load' });
  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  await editor.waitFor({ timeout: 15000 });

  // The query, typed into the editor.
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(query);

  // The token, typed into the Headers editor.
  await page.getByRole('button', { name: 'Headers' }).click();
  const headers = page.locator('[aria-label="Headers"] .CodeMirror').filter({ visible: true });
  await headers.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${token}` }));

  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(
    () => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror?.getValue().includes('"iid"'),
    null,
    { timeout: 15000 },
  );
  const result = JSON.parse(
    await page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()),
  );
  await page.screenshot({ path: screenshot, fullPage: true });

  const node = result?.data?.project?.deployments?.nodes?.[0];
  if (!node || !node.iid || !node.environment?.name || result.errors) {
    failed = true;
    console.error('the result pane does not show a deployment:', JSON.stringify(result));
  } else {
    console.log(`GraphiQL showed deployment ${node.iid} (${node.status}) on ${node.environment.name}`);
  }
  if (broken.length > 0) {
    failed = true;
    console.error('requests that failed or page errors:\n  ' + broken.join('\n  '));
  }
  if (blocked.length > 0) {
    console.log(`refused ${blocked.length} request(s) to other hosts: ${blocked.join(', ')}`);
  }
  console.log(`screenshot: ${screenshot}`);
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
