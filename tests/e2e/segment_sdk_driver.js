// Drives a real Segment or RudderStack node SDK against a running collect (tests/e2e/test_segment_sdks.py).
//   node segment_sdk_driver.js <analytics-node|rudder-sdk-node> <host> <write key> <calls.json>
// calls.json: [[method, params], ...], sent in order as one batch by an explicit flush (flushAt is above the
// number of calls and the interval long, so the SDK's own timer never splits them). Exits 1 when the SDK reports
// a delivery it gave up on. The packages come from NODE_PATH (scripts/tools.sh installs them).
'use strict'
const fs = require('fs')

const [sdk, host, writeKey, callsFile] = process.argv.slice(2)
const calls = JSON.parse(fs.readFileSync(callsFile, 'utf8'))

async function segmentNode() {
  const { Analytics } = require('@segment/analytics-node')
  const analytics = new Analytics({ writeKey, host, flushAt: 1000, flushInterval: 60000, maxRetries: 5 })
  const failures = []
  analytics.on('error', (err) => failures.push(String((err && err.reason) || (err && err.code) || err)))
  for (const [method, params] of calls) analytics[method](params)
  await analytics.closeAndFlush({ timeout: 60000 })
  if (failures.length) throw new Error(`analytics-node gave up: ${failures.join('; ')}`)
}

async function rudderNode() {
  const Analytics = require('@rudderstack/rudder-sdk-node')
  const client = new Analytics(writeKey, { dataPlaneUrl: host, flushAt: 1000, flushInterval: 60000, retryCount: 5,
                                           logLevel: 'error' })
  for (const [method, params] of calls) client[method](params)
  await client.flush()
}

const run = { 'analytics-node': segmentNode, 'rudder-sdk-node': rudderNode }[sdk]
if (!run) {
  console.error(`unknown sdk ${sdk}`)
  process.exit(2)
}
run().then(() => process.exit(0), (err) => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
