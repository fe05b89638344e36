// DevKitDPS: zero-touch registration of an MXChip AZ3166 DevKit with the Azure IoT Hub Device
// Provisioning Service (DPS), using the DevKit's DICE/RIoT X.509 identity.
//
// The DPS settings come from dps_config.h, which `devkit build` generates from the project's
// settings on every build (never edit it by hand; it is not committed). The UDS and Wi-Fi
// credentials live on the device (set with `devkit set-uds` / `devkit set-wifi` in
// configuration mode), never in this sketch.
//
// After DPS registration this sketch prints one line the tools look for:
//   DevKit alias certificate SHA-256: <64 upper-case hex digits>
// the SHA-256 of the DER alias certificate the device presented. It must equal the thumbprint
// `devkit generate-cert` computed for the same image, UDS and registration ID; if it does not,
// the enrollment does not match the device (DPS answers 401002 "Invalid certificate").
//
// STATUS: written against the AZ3166 platform headers but NOT verified on hardware and not
// compiled in CI (no AZ3166 toolchain there). Treat it as unverified until it has run on a DevKit.

#include "AZ3166WiFi.h"
#include "DevKitMQTTClient.h"
#include "DevkitDPSClient.h"
#include "mbedtls/base64.h"
#include "mbedtls/sha256.h"
#include <string.h>

#include "dps_config.h"

#if !defined(DPS_GLOBAL_DEVICE_ENDPOINT) || !defined(DPS_ID_SCOPE) || !defined(DPS_REGISTRATION_ID)
#error "dps_config.h is incomplete: build the sketch with `devkit build`, which generates it"
#endif

// Provided by the DevKit's RIoT core (C linkage): the alias certificate as PEM text.
extern "C" char *RIoTGetAliasCert(unsigned int *len);

static const int HEARTBEAT_INTERVAL_MS = 10000;
static bool hasWifi = false;
static bool hasIoTHub = false;
static unsigned long heartbeatCount = 0;
static unsigned long lastHeartbeatMs = 0;

// Decode the alias certificate PEM and print the SHA-256 of its DER bytes.
static void printAliasCertThumbprint()
{
  static char pem[2048];
  static unsigned char b64[2048];
  static unsigned char der[1536];
  static const char BEGIN[] = "-----BEGIN CERTIFICATE-----";
  static const char END[] = "-----END CERTIFICATE-----";

  unsigned int pemLen = 0;
  const char *src = RIoTGetAliasCert(&pemLen);
  if (src == NULL || pemLen == 0 || pemLen >= sizeof(pem))
  {
    Serial.println("DevKit alias certificate SHA-256: unavailable (no alias certificate from the RIoT layer)");
    return;
  }
  // Copy with a terminating NUL: the RIoT buffer's length may or may not include one.
  memcpy(pem, src, pemLen);
  pem[pemLen] = '\0';

  const char *begin = strstr(pem, BEGIN);
  const char *end = (begin != NULL) ? strstr(begin, END) : NULL;
  if (begin == NULL || end == NULL)
  {
    Serial.println("DevKit alias certificate SHA-256: unavailable (alias certificate is not PEM)");
    return;
  }
  size_t b64Len = 0;
  for (const char *p = begin + strlen(BEGIN); p < end; p++)
  {
    if (*p == '\r' || *p == '\n' || *p == ' ' || *p == '\t')
    {
      continue;
    }
    if (b64Len >= sizeof(b64))
    {
      Serial.println("DevKit alias certificate SHA-256: unavailable (alias certificate too large)");
      return;
    }
    b64[b64Len++] = (unsigned char)*p;
  }

  size_t derLen = 0;
  if (mbedtls_base64_decode(der, sizeof(der), &derLen, b64, b64Len) != 0 || derLen == 0)
  {
    Serial.println("DevKit alias certificate SHA-256: unavailable (alias certificate base64 is invalid)");
    return;
  }

  unsigned char hash[32];
  mbedtls_sha256(der, derLen, hash, 0);

  char hex[65];
  static const char DIGITS[] = "0123456789ABCDEF";
  for (int i = 0; i < 32; i++)
  {
    hex[2 * i] = DIGITS[hash[i] >> 4];
    hex[2 * i + 1] = DIGITS[hash[i] & 0x0F];
  }
  hex[64] = '\0';
  Serial.print("DevKit alias certificate SHA-256: ");
  Serial.println(hex);
}

static void initWifi()
{
  Screen.print(2, "Connecting...");
  if (WiFi.begin() == WL_CONNECTED)
  {
    IPAddress ip = WiFi.localIP();
    Screen.print(1, ip.get_address());
    hasWifi = true;
    Screen.print(2, "Running... \r\n");
  }
  else
  {
    hasWifi = false;
    Screen.print(1, "No Wi-Fi\r\n ");
    Serial.println("Wi-Fi is not connected: store the network with `devkit set-wifi` in configuration mode.");
  }
}

void setup()
{
  Screen.init();
  Screen.print(0, "DevKit DPS");
  Screen.print(2, "Initializing...");
  Serial.begin(115200);

  Screen.print(3, " > Wi-Fi");
  initWifi();
  if (!hasWifi)
  {
    return;
  }

  Screen.print(3, " > Azure DPS");
  bool registered = DevkitDPSClientStart(DPS_GLOBAL_DEVICE_ENDPOINT, DPS_ID_SCOPE, DPS_REGISTRATION_ID);
  // Printed whether or not registration succeeded: on a 401002 it is what tells a wrong
  // enrollment apart from a wrong device.
  printAliasCertThumbprint();
  if (!registered)
  {
    Screen.print(2, "DPS failed!\r\n");
    Serial.println("DPS registration failed: check the enrollment's certificate against the thumbprint above.");
    return;
  }
  const char *hub = DevkitDPSGetIoTHubURI();
  const char *deviceId = DevkitDPSGetDeviceID();
  Serial.print("DPS assigned hub: ");
  Serial.print(hub != NULL ? hub : "(unknown)");
  Serial.print(", device ID: ");
  Serial.println(deviceId != NULL ? deviceId : "(unknown)");
  Screen.print(2, "DPS done\r\n");

  Screen.print(3, " > IoT Hub");
  DevKitMQTTClient_SetOption(OPTION_MINI_SOLUTION_NAME, "DevKitDPS");
  if (!DevKitMQTTClient_Init(false, true))
  {
    Screen.print(2, "IoT Hub failed!\r\n");
    Serial.println("Connecting to IoT Hub failed.");
    return;
  }
  hasIoTHub = true;
  Screen.print(3, " > Connected");
}

void loop()
{
  if (hasWifi && hasIoTHub)
  {
    unsigned long now = millis();
    if (heartbeatCount == 0 || now - lastHeartbeatMs >= (unsigned long)HEARTBEAT_INTERVAL_MS)
    {
      char message[64];
      heartbeatCount++;
      snprintf(message, sizeof(message), "{\"heartbeat\":%lu}", heartbeatCount);
      if (DevKitMQTTClient_SendEvent(message))
      {
        Serial.print("Heartbeat sent: ");
        Serial.println(message);
      }
      else
      {
        Serial.println("Heartbeat failed.");
      }
      lastHeartbeatMs = now;
    }
    DevKitMQTTClient_Check();
  }
  delay(100);
}
