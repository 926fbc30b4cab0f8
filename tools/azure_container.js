// Create a blob container in Azurite (tools/services.py), through the Azure SDK for JavaScript.
// Usage: node azure_container.js ENDPOINT ACCOUNT CONTAINER, the key in AZURE_STORAGE_ACCOUNT_KEY.
"use strict";
const { BlobServiceClient, StorageSharedKeyCredential } = require("@azure/storage-blob");

const [endpoint, account, container] = process.argv.slice(2);
const credential = new StorageSharedKeyCredential(account, process.env.AZURE_STORAGE_ACCOUNT_KEY);
new BlobServiceClient(endpoint, credential)
  .getContainerClient(container)
  .createIfNotExists()
  .then(() => process.exit(0))
  .catch((error) => {
    console.error(String(error));
    process.exit(1);
  });
