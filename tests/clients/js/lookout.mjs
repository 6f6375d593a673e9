// Drives the unmodified JS SDK v3 Lookout for Vision client against Loupe; prints one JSON report.
import {
  CreateProjectCommand, DescribeProjectCommand, CreateDatasetCommand,
  DescribeDatasetCommand, TagResourceCommand, ListTagsForResourceCommand, UntagResourceCommand,
  DeleteProjectCommand, DeleteDatasetCommand, paginateListProjects,
} from "@aws-sdk/client-lookoutvision";
import { client, failure } from "./lookout-client.mjs";

const project = process.env.PROJECT;
const report = {};

const created = await client.send(new CreateProjectCommand({ ProjectName: project }));
report.createdYear = created.ProjectMetadata.CreationTimestamp.getUTCFullYear();
report.createdIsDate = created.ProjectMetadata.CreationTimestamp instanceof Date;
const described = await client.send(new DescribeProjectCommand({ ProjectName: project }));
report.arn = described.ProjectDescription.ProjectArn;
const names = [];
for await (const page of paginateListProjects({ client, pageSize: 2 }, {})) names.push(...page.Projects.map((p) => p.ProjectName));
report.listed = names.includes(project);
report.pages = names.length;
const dataset = await client.send(new CreateDatasetCommand({ ProjectName: project, DatasetType: "train" }));
report.datasetStatus = dataset.DatasetMetadata.Status;
const dd = await client.send(new DescribeDatasetCommand({ ProjectName: project, DatasetType: "train" }));
report.imageStats = dd.DatasetDescription.ImageStats;
report.lastUpdatedYear = dd.DatasetDescription.LastUpdatedTimestamp.getUTCFullYear();
await client.send(new TagResourceCommand({ ResourceArn: report.arn, Tags: [{ Key: "line", Value: "A/7" }, { Key: "x", Value: "1" }] }));
await client.send(new UntagResourceCommand({ ResourceArn: report.arn, TagKeys: ["x"] }));
report.tags = (await client.send(new ListTagsForResourceCommand({ ResourceArn: report.arn }))).Tags;
report.notFound = await failure(new DescribeProjectCommand({ ProjectName: project + "-missing" }));
report.invalid = await failure(new CreateProjectCommand({ ProjectName: "no spaces" }));
report.conflict = await failure(new DeleteProjectCommand({ ProjectName: project }));
await client.send(new DeleteDatasetCommand({ ProjectName: project, DatasetType: "train" }));
console.log(JSON.stringify(report));
