// Drives the unmodified JS SDK v3 through the model packaging operations on a trained model
// version (PROJECT); prints one JSON report.
import {
  StartModelPackagingJobCommand, DescribeModelPackagingJobCommand,
  paginateListModelPackagingJobs,
} from "@aws-sdk/client-lookoutvision";
import { client, failure } from "./lookout-client.mjs";

const project = process.env.PROJECT;
const report = {};

const configuration = {
  Greengrass: {
    ComponentName: "loupe-js", ComponentVersion: "3.0.0", TargetDevice: "jetson_xavier",
    S3OutputLocation: { Bucket: "edge-bkt", Prefix: "js/" },
  },
};
const started = await client.send(new StartModelPackagingJobCommand({
  ProjectName: project, ModelVersion: "1", JobName: "from-js", Configuration: configuration,
}));
report.jobName = started.JobName;
let described;
for (let i = 0; i < 200; i += 1) {
  described = (await client.send(new DescribeModelPackagingJobCommand({ ProjectName: project, JobName: "from-js" })))
    .ModelPackagingDescription;
  if (described.Status === "SUCCEEDED" || described.Status === "FAILED") break;
  await new Promise((ok) => setTimeout(ok, 300));
}
report.status = described.Status;
report.createdIsDate = described.CreationTimestamp instanceof Date;
report.createdYear = described.CreationTimestamp.getUTCFullYear();
report.updatedIsDate = described.LastUpdatedTimestamp instanceof Date;
report.output = described.ModelPackagingOutputDetails;
report.target = described.ModelPackagingConfiguration.Greengrass.TargetDevice;
const names = [];
for await (const page of paginateListModelPackagingJobs({ client, pageSize: 1 }, { ProjectName: project })) {
  names.push(...page.ModelPackagingJobs.map((j) => j.JobName));
}
report.listed = names;
report.invalid = await failure(new StartModelPackagingJobCommand({
  ProjectName: project, ModelVersion: "1", Configuration: { Greengrass: { ...configuration.Greengrass, TargetPlatform: { Os: "LINUX", Arch: "ARM64" } } },
}));
report.notFound = await failure(new DescribeModelPackagingJobCommand({ ProjectName: project, JobName: "missing" }));
console.log(JSON.stringify(report));
