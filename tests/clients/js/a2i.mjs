// Drives the unmodified JS SDK v3 A2I runtime client against Loupe; prints one JSON report.
import {
  SageMakerA2IRuntimeClient, StartHumanLoopCommand, DescribeHumanLoopCommand, ListHumanLoopsCommand,
  StopHumanLoopCommand, DeleteHumanLoopCommand, paginateListHumanLoops,
} from "@aws-sdk/client-sagemaker-a2i-runtime";

const client = new SageMakerA2IRuntimeClient({
  endpoint: process.env.LOUPE_ENDPOINT_URL,
  region: "us-east-1",
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  maxAttempts: 1,
});
const flow = process.env.FLOW_ARN;
const prefix = process.env.PREFIX;
const loops = [0, 1, 2].map((i) => `${prefix}-${i}`);
const report = { loops };

async function failure(command) {
  try { await client.send(command); return null; }
  catch (err) { return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message }; }
}

const start = (name, content) => client.send(new StartHumanLoopCommand({
  HumanLoopName: name, FlowDefinitionArn: flow, HumanLoopInput: { InputContent: JSON.stringify(content) },
  DataAttributes: { ContentClassifiers: ["FreeOfPersonallyIdentifiableInformation"] },
}));

report.arns = [];
for (const name of loops) {
  report.arns.push((await start(name, { item: name })).HumanLoopArn);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
report.again = (await start(loops[0], { item: loops[0] })).HumanLoopArn;

const described = await client.send(new DescribeHumanLoopCommand({ HumanLoopName: loops[0] }));
report.createdIsDate = described.CreationTime instanceof Date;
report.createdYear = described.CreationTime.getUTCFullYear();
report.status = described.HumanLoopStatus;
report.flowArn = described.FlowDefinitionArn;
report.hasFailure = "FailureCode" in described || "FailureReason" in described;

async function paged(SortOrder) {
  const names = [];
  let pages = 0;
  for await (const page of paginateListHumanLoops({ client, pageSize: 1 }, { FlowDefinitionArn: flow, SortOrder })) {
    pages += 1;
    for (const s of page.HumanLoopSummaries) {
      if (!(s.CreationTime instanceof Date) || s.CreationTime.getUTCFullYear() < 2026) throw new Error(`bad time ${s.CreationTime}`);
      names.push(s.HumanLoopName);
    }
  }
  return { names, pages };
}
report.descending = await paged("Descending");
report.ascending = await paged("Ascending");
report.defaultOrder = (await client.send(new ListHumanLoopsCommand({ FlowDefinitionArn: flow })))
  .HumanLoopSummaries.map((s) => s.HumanLoopName);
report.after = (await client.send(new ListHumanLoopsCommand({
  FlowDefinitionArn: flow, CreationTimeAfter: new Date(described.CreationTime.getTime() + 5), SortOrder: "Ascending",
}))).HumanLoopSummaries.map((s) => s.HumanLoopName);

report.stopOutput = Object.keys(await client.send(new StopHumanLoopCommand({ HumanLoopName: loops[0] })))
  .filter((k) => k !== "$metadata");
const deadline = Date.now() + 10000;
let status;
do {
  status = (await client.send(new DescribeHumanLoopCommand({ HumanLoopName: loops[0] }))).HumanLoopStatus;
  if (status !== "Stopped") await new Promise((resolve) => setTimeout(resolve, 100));
} while (status !== "Stopped" && Date.now() < deadline);
report.stoppedStatus = status;
report.deleteStatus = (await client.send(new DeleteHumanLoopCommand({ HumanLoopName: loops[0] }))).$metadata.httpStatusCode;
report.afterDelete = await failure(new DescribeHumanLoopCommand({ HumanLoopName: loops[0] }));

report.notFound = await failure(new DescribeHumanLoopCommand({ HumanLoopName: `${prefix}-missing` }));
report.invalid = await failure(new StartHumanLoopCommand({
  HumanLoopName: "Not_Valid", FlowDefinitionArn: flow, HumanLoopInput: { InputContent: "{}" },
}));
report.conflict = await failure(new StartHumanLoopCommand({
  HumanLoopName: loops[1], FlowDefinitionArn: flow, HumanLoopInput: { InputContent: "{\"other\": true}" },
}));
report.deleteActive = await failure(new DeleteHumanLoopCommand({ HumanLoopName: loops[1] }));
console.log(JSON.stringify(report));
