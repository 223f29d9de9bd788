// Sends one person's calls through @rudderstack/rudder-sdk-node (gzip on by default), pointed at
// Turnout by `dataPlaneUrl` alone.
// Usage: node send-rudder-node.js <turnout url> <write key> <user id>
const Analytics = require('@rudderstack/rudder-sdk-node')

async function main() {
  const [dataPlaneUrl, writeKey, userId] = process.argv.slice(2)
  const errors = []
  const client = new Analytics(writeKey, {
    dataPlaneUrl,
    flushInterval: 200,
    logLevel: 'error',
    errorHandler: (err) => errors.push(String(err && err.message ? err.message : err)),
  })
  client.identify({ userId, anonymousId: `anon-${userId}`, traits: { email: `${userId}@example.com`, plan: 'pro' } })
  client.page({ userId, category: 'Docs', name: 'Install', properties: { url: 'https://x.io/i' } })
  client.track({ userId, event: 'Order Completed', properties: { revenue: 42.5, items: [{ sku: 'a' }] } })
  client.screen({ userId, name: 'Settings', properties: { category: 'App' } })
  client.group({ userId, groupId: 'acme', traits: { name: 'Acme Inc' } })
  await client.flush()
  if (errors.length) {
    console.error(JSON.stringify(errors))
    process.exit(1)
  }
}

main().catch((err) => { console.error(err); process.exit(1) })
