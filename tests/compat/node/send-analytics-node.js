// Sends one person's calls through @segment/analytics-node, or an SDK with its API (Customer.io's
// @customerio/cdp-analytics-node), pointed at Turnout by `host` alone.
// Usage: node send-analytics-node.js <turnout url> <write key> <user id> [package]

async function main() {
  const [host, writeKey, userId, sdk = '@segment/analytics-node'] = process.argv.slice(2)
  const { Analytics } = require(sdk)
  const analytics = new Analytics({ writeKey, host, flushInterval: 200 })
  const errors = []
  analytics.on('error', (err) => errors.push(String(err.reason || err.message || err)))
  analytics.identify({ userId, anonymousId: `anon-${userId}`, traits: { email: `${userId}@example.com`, plan: 'pro' } })
  analytics.page({ userId, category: 'Docs', name: 'Install', properties: { url: 'https://x.io/i' } })
  analytics.track({ userId, event: 'Order Completed', properties: { revenue: 42.5, items: [{ sku: 'a' }] } })
  analytics.screen({ userId, name: 'Settings', properties: { category: 'App' } })
  analytics.group({ userId, groupId: 'acme', traits: { name: 'Acme Inc' } })
  await analytics.closeAndFlush({ timeout: 10000 })
  if (errors.length) {
    console.error(JSON.stringify(errors))
    process.exit(1)
  }
}

main().catch((err) => { console.error(err); process.exit(1) })
