// The unmodified JS SDK v3 Lookout for Vision client pointed at Loupe (LOUPE_ENDPOINT_URL), and a
// helper that turns a refused call into {name, status, message, resourceType}.
import { LookoutVisionClient } from "@aws-sdk/client-lookoutvision";

export const client = new LookoutVisionClient({
  endpoint: process.env.LOUPE_ENDPOINT_URL,
  region: "us-east-1",
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  maxAttempts: 1,
});

export async function failure(command) {
  try { await client.send(command); return null; }
  catch (err) { return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message, resourceType: err.ResourceType }; }
}
