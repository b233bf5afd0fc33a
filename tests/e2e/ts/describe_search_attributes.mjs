// Prints what the official TypeScript client makes of a workflow's search attributes, as JSON on stdout:
// node describe_search_attributes.mjs <address> <namespace> <workflowId>
import { Connection, Client } from '@temporalio/client';

const [address, namespace, workflowId] = process.argv.slice(2);
const connection = await Connection.connect({ address });
try {
  const client = new Client({ connection, namespace });
  const desc = await client.workflow.getHandle(workflowId).describe();
  const typed = {};
  for (const pair of desc.typedSearchAttributes.getAll()) {
    const value = pair.value;
    typed[pair.key.name] = {
      type: pair.key.type,
      js: value instanceof Date ? 'Date' : Array.isArray(value) ? 'Array' : typeof value,
      value: value instanceof Date ? value.toISOString() : value,
    };
  }
  console.log(JSON.stringify({ typed }));
} finally {
  await connection.close();
}
